#pragma once
/// \file
/// Owning raw allocations: stream-ordered device memory and page-locked host memory.

#include <cstddef>
#include <utility>

#include <cuda_runtime_api.h>

#include "ogpsa/cuda/error.hpp"

namespace ogpsa::cuda::detail {

/// Device memory allocated and freed in the order of one stream (`cudaMallocAsync` /
/// `cudaFreeAsync`), so that releasing it never waits for the device. The stream must outlive
/// the buffer.
class device_buffer {
 public:
  device_buffer() = default;

  /// \throws out_of_memory when the device has no room, backend_error for other failures.
  device_buffer(std::size_t bytes, cudaStream_t stream, const char* where)
      : size_(bytes), stream_(stream) {
    if (bytes > 0) check_allocation(cudaMallocAsync(&data_, bytes, stream), where, "cudaMallocAsync", bytes);
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
