#pragma once
/// \file
/// `ogpsa::cuda::workspace`: what `backend::project` and `project_all` reuse from call to call,
/// so that a warm projection allocates nothing, on the host or on the device.

#include <cstddef>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "ogpsa/cuda/detail/device_buffer.hpp"
#include "ogpsa/cuda/device_span.hpp"
#include "ogpsa/cuda/detail/projection_plan.hpp"
#include "ogpsa/cuda/error.hpp"
#include "ogpsa/cuda/execution.hpp"

namespace ogpsa::cuda {

/// Device scratch, page-locked staging, the host-side plan of the last call and an event that
/// marks the return of its results. Grows to the largest call seen; default construction
/// touches no device. A projector holds one.
class workspace {
 public:
  workspace() = default;
  workspace(workspace&& other) noexcept
      : plan(std::move(other.plan)),
        tasks(std::move(other.tasks)),
        device_(std::move(other.device_)),
        host_(std::move(other.host_)),
        results_(std::exchange(other.results_, nullptr)) {}
  workspace& operator=(workspace&& other) noexcept {
    std::swap(plan, other.plan);
    std::swap(tasks, other.tasks);
    std::swap(device_, other.device_);
    std::swap(host_, other.host_);
    std::swap(results_, other.results_);
    return *this;
  }
  workspace(const workspace&) = delete;
  workspace& operator=(const workspace&) = delete;
  ~workspace() {
    if (results_ != nullptr) (void)cudaEventDestroy(results_);
  }

  detail::projection_plan plan;
  std::vector<detail::block_task> tasks;

  /// At least `bytes` of device memory, ordered on exec's stream.
  std::byte* device(execution& exec, std::size_t bytes) {
    if (device_.size() < bytes) {
      device_ = detail::device_buffer();  // free first: the old contents are not needed
      device_ = detail::device_buffer(bytes, exec.stream(), "ogpsa::cuda::workspace");
    }
    return static_cast<std::byte*>(device_.data());
  }

  /// At least `bytes` of page-locked host memory.
  std::byte* host(std::size_t bytes) {
    if (host_.size() < bytes) {
      host_ = detail::pinned_buffer();
      host_ = detail::pinned_buffer(bytes, "ogpsa::cuda::workspace");
    }
    return static_cast<std::byte*>(host_.data());
  }

  /// The packed coefficients of the last `coefficients_all` call (see `backend::coefficients_all`):
  /// what a data-parallel all-reduce sums before `update_all`. `Acc` is the call's accumulator type.
  /// \throws invalid_argument when Acc is not that type.
  template <class Acc>
  device_span<Acc> packed_coefficients() const {
    OGPSA_REQUIRE(plan.accumulator_bytes() == sizeof(Acc), invalid_argument, "ogpsa::cuda::workspace::packed_coefficients",
                  "the last call accumulated in " << plan.accumulator_bytes() << "-byte elements, not "
                                                  << sizeof(Acc));
    const detail::plan_layout& l = plan.layout();
    return {reinterpret_cast<Acc*>(static_cast<std::byte*>(device_.data()) + l.packed), l.packed_count};
  }

  /// The event recorded once a call's results are on their way to the host.
  cudaEvent_t results_event() {
    if (results_ == nullptr)
      OGPSA_CUDA_CHECK("ogpsa::cuda::workspace", cudaEventCreateWithFlags(&results_, cudaEventDisableTiming));
    return results_;
  }

 private:
  detail::device_buffer device_;
  detail::pinned_buffer host_;
  cudaEvent_t results_ = nullptr;
};

}  // namespace ogpsa::cuda
