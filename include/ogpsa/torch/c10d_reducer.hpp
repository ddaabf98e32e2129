#pragma once
/// \file
/// `c10d_reducer`: the projector's reducer policy (`ogpsa/reducer.hpp`) over a LibTorch c10d
/// process group, so that ogpsa rides on the communicator the training already uses (Gloo on
/// CPU) rather than a transport of its own.
///
///     auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", store_options);
///     auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, ranks, gloo_options);
///     ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<float>,
///                      ogpsa::torch::c10d_reducer> p(ogpsa::exact_svd{.rank = 8}, {}, {}, {},
///                                                    ogpsa::torch::c10d_reducer(group));
///
/// Sums host buffers (the CPU backend's packed coefficients and the estimators' partial Gram
/// matrices) with one `allreduce` each. A collective that fails or outlives `timeout` (a peer
/// died mid-collective) throws `ogpsa::communication_error` naming the rank and the length.
/// A C++ program should ignore SIGPIPE (`std::signal(SIGPIPE, SIG_IGN)`, as Python does at start-up):
/// otherwise a write to a dead peer's socket kills the rank before Gloo can report the failure.

#include <chrono>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include "ogpsa/error.hpp"
#include "ogpsa/reducer.hpp"

namespace ogpsa::torch {

class c10d_reducer {
 public:
  static constexpr bool communicates = true;

  /// \throws invalid_argument for a null group or a timeout that is not positive.
  explicit c10d_reducer(c10::intrusive_ptr<c10d::ProcessGroup> group,
                        std::chrono::milliseconds timeout = std::chrono::minutes(5))
      : group_(std::move(group)), timeout_(timeout) {
    OGPSA_REQUIRE(group_, invalid_argument, "ogpsa::torch::c10d_reducer", "the process group is null");
    OGPSA_REQUIRE(timeout_.count() > 0, invalid_argument, "ogpsa::torch::c10d_reducer",
                  "the timeout must be positive, got " << timeout_.count() << " ms");
  }

  rank_position position() const { return {group_->getRank(), group_->getSize()}; }
  const c10::intrusive_ptr<c10d::ProcessGroup>& group() const noexcept { return group_; }
  std::chrono::milliseconds timeout() const noexcept { return timeout_; }

  /// Replaces `values` on every rank by their sum over the group, in place (one allreduce).
  /// \throws communication_error when the collective fails or times out.
  template <class T>
  void sum(std::span<T> values) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "c10d_reducer sums float or double");
    if (values.empty()) return;  // equally empty on every rank: nothing to agree on
    std::vector<at::Tensor> tensors{at::from_blob(values.data(), {static_cast<std::int64_t>(values.size())},
                                                  at::TensorOptions().dtype(at::CppTypeToScalarType<T>::value))};
    try {
      auto work = group_->allreduce(tensors);
      OGPSA_REQUIRE(work->wait(timeout_), communication_error, "ogpsa::torch::c10d_reducer::sum",
                    "rank " << group_->getRank() << " of " << group_->getSize() << ": the all-reduce of "
                            << values.size() << " values did not complete within " << timeout_.count() << " ms");
    } catch (const communication_error&) {
      throw;
    } catch (const std::exception& e) {
      OGPSA_FAIL(communication_error, "ogpsa::torch::c10d_reducer::sum",
                 "rank " << group_->getRank() << " of " << group_->getSize() << ": the all-reduce of "
                         << values.size() << " values failed (did a rank die?): " << e.what());
    }
  }

 private:
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
  std::chrono::milliseconds timeout_;
};

}  // namespace ogpsa::torch
