#pragma once
/// \file
/// An owning CUDA event, created on first use (so that a default-constructed owner touches no
/// device) and without timing (cheaper to record and wait on).

#include <utility>

#include <cuda_runtime_api.h>

#include "ogpsa/cuda/error.hpp"

namespace ogpsa::cuda::detail {

class event {
 public:
  event() = default;
  event(event&& other) noexcept : event_(std::exchange(other.event_, nullptr)), recorded_(std::exchange(other.recorded_, false)) {}
  event& operator=(event&& other) noexcept {
    std::swap(event_, other.event_);
    std::swap(recorded_, other.recorded_);
    return *this;
  }
  event(const event&) = delete;
  event& operator=(const event&) = delete;
  ~event() {
    if (event_ != nullptr) (void)cudaEventDestroy(event_);
  }

  /// Marks the point `stream` has reached in its queue.
  void record(cudaStream_t stream, const char* where) {
    OGPSA_CUDA_CHECK(where, cudaEventRecord(get(where), stream));
    recorded_ = true;
  }

  /// Blocks the host until the work before the last `record` has run (at once if never recorded).
  void synchronize(const char* where) const {
    if (recorded_) OGPSA_CUDA_CHECK(where, cudaEventSynchronize(event_));
  }

  /// Makes `stream` wait, on the device, for the work before the last `record`.
  void order(cudaStream_t stream, const char* where) const {
    if (recorded_) OGPSA_CUDA_CHECK(where, cudaStreamWaitEvent(stream, event_, 0));
  }

  cudaEvent_t get(const char* where) {
    if (event_ == nullptr) OGPSA_CUDA_CHECK(where, cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
    return event_;
  }

 private:
  cudaEvent_t event_ = nullptr;
  bool recorded_ = false;
};

}  // namespace ogpsa::cuda::detail
