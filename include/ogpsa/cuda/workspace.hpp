#pragma once
/// \file
/// `ogpsa::cuda::workspace`: what `backend::project` and `project_all` reuse from call to call,
/// so that a warm projection allocates nothing, on the host or on the device.

#include <cstddef>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "ogpsa/cuda/detail/device_buffer.hpp"
#include "ogpsa/cuda/detail/event.hpp"
#include "ogpsa/cuda/device_span.hpp"
#include "ogpsa/cuda/detail/projection_plan.hpp"
#include "ogpsa/cuda/error.hpp"
#include "ogpsa/cuda/execution.hpp"

namespace ogpsa::cuda {

/// Device scratch, page-locked staging, the host-side plan of the last call and the events that
/// order calls: when its results came back, when its descriptors were uploaded, where it ended.
/// Grows to the largest call seen; default construction touches no device. A projector holds one.
///
/// A projection that reads no stats returns with its work in flight, so the next call may begin
/// while this one is queued: `begin_call` makes it wait for what it would overwrite (the staging
/// copy on the host, everything on the device when it runs on another stream).
class workspace {
 public:
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
    const detail::workspace_offsets& l = plan.offsets();
    return {reinterpret_cast<Acc*>(static_cast<std::byte*>(device_.data()) + l.packed), l.packed_count};
  }

  /// The event recorded once a call's results are on their way to the host.
  cudaEvent_t results_event() { return results_.get("ogpsa::cuda::workspace"); }

  /// Before a call touches the workspace: its stream waits on the device for the previous call
  /// (a no-op on the same stream, needed on another), and the host for the previous upload from
  /// the staging copy, which the call is about to rewrite.
  void begin_call(cudaStream_t stream, const char* where) {
    call_end_.order(stream, where);
    uploaded_.synchronize(where);
  }

  /// After the upload from the staging copy has been queued on `stream`.
  void mark_upload(cudaStream_t stream, const char* where) { uploaded_.record(stream, where); }

  /// After the last of a call's work has been queued on `stream`. The device scratch is freed in
  /// the order of the stream it was allocated on, which waits for this call when it ran elsewhere.
  void mark_call_end(cudaStream_t stream, const char* where) {
    call_end_.record(stream, where);
    if (device_.size() > 0 && device_.stream() != stream) call_end_.order(device_.stream(), where);
  }

 private:
  detail::device_buffer device_;
  detail::pinned_buffer host_;
  detail::event results_, uploaded_, call_end_;
};

}  // namespace ogpsa::cuda
