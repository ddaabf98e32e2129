#pragma once
/// \file
/// Owning raw allocations: stream-ordered device memory and page-locked host memory.

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include <cuda_runtime_api.h>

#include "ogpsa/cuda/error.hpp"

namespace ogpsa::cuda::detail {

/// ogpsa's own stream-ordered memory pool on the current device. Memory freed to it stays
/// reserved for ogpsa's next allocation: the device's default pool returns freed memory to the
/// driver at every synchronization (its release threshold is 0), so scratch allocated per call
/// (estimator panels, projection workspaces) would pay for a fresh allocation every time. A pool
/// of its own leaves the default pool's settings to the process's other users;
/// `ogpsa::cuda::release_cached_memory()` gives what it holds back.
inline cudaMemPool_t library_pool(const char* where) {
  static std::mutex mutex;
  static std::map<int, cudaMemPool_t> pools;  // per device, for the life of the process
  int device = 0;
  OGPSA_CUDA_CHECK(where, cudaGetDevice(&device));
  const std::lock_guard<std::mutex> lock(mutex);
  if (const auto found = pools.find(device); found != pools.end()) return found->second;
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device;
  cudaMemPool_t pool = nullptr;
  OGPSA_CUDA_CHECK(where, cudaMemPoolCreate(&pool, &props));
  std::uint64_t keep_everything = UINT64_MAX;
  OGPSA_CUDA_CHECK(where, cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_everything));
  pools.emplace(device, pool);
  return pool;
}

/// Device memory allocated and freed in the order of one stream (from `library_pool`), so that
/// releasing it never waits for the device. The stream must outlive the buffer.
class device_buffer {
 public:
  device_buffer() = default;

  /// \throws out_of_memory when the device has no room, backend_error for other failures.
  device_buffer(std::size_t bytes, cudaStream_t stream, const char* where)
      : size_(bytes), stream_(stream) {
    if (bytes > 0)
      check_allocation(cudaMallocFromPoolAsync(&data_, bytes, library_pool(where), stream), where,
                       "cudaMallocFromPoolAsync", bytes);
  }

  device_buffer(device_buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        stream_(other.stream_) {}

  device_buffer& operator=(device_buffer&& other) noexcept {
    device_buffer(std::move(other)).swap(*this);
    return *this;
  }

  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;

  ~device_buffer() {
    if (data_ != nullptr) (void)cudaFreeAsync(data_, stream_);  // a destructor cannot report failures
  }

  void swap(device_buffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(stream_, other.stream_);
  }

  void* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  cudaStream_t stream() const noexcept { return stream_; }

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
  cudaStream_t stream_ = nullptr;
};

/// Page-locked host memory: the end points of asynchronous copies.
class pinned_buffer {
 public:
  pinned_buffer() = default;

  /// \throws out_of_memory when no page-locked memory is left, backend_error otherwise.
  pinned_buffer(std::size_t bytes, const char* where) : size_(bytes) {
    if (bytes > 0) check_allocation(cudaMallocHost(&data_, bytes), where, "cudaMallocHost", bytes);
  }

  pinned_buffer(pinned_buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

  pinned_buffer& operator=(pinned_buffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    return *this;
  }

  pinned_buffer(const pinned_buffer&) = delete;
  pinned_buffer& operator=(const pinned_buffer&) = delete;

  ~pinned_buffer() {
    if (data_ != nullptr) (void)cudaFreeHost(data_);
  }

  void* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace ogpsa::cuda::detail

namespace ogpsa::cuda {

/// Returns to the driver the device memory ogpsa keeps for reuse on the current device (what its
/// freed scratch reserved), for a process that needs it elsewhere; ogpsa's next allocations
/// reserve it again. Memory still in use, or freed on a stream whose work has not finished, stays.
inline void release_cached_memory() {
  constexpr const char* where = "ogpsa::cuda::release_cached_memory";
  OGPSA_CUDA_CHECK(where, cudaMemPoolTrimTo(detail::library_pool(where), 0));
}

}  // namespace ogpsa::cuda
