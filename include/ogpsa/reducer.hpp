#pragma once
/// \file
/// Reducers: how a projector sums numbers across the ranks of a distributed run. The policy is the
/// projector's fifth template argument; `local_reducer` (the default) communicates nothing, and
/// `ogpsa::torch::c10d_reducer` (`<ogpsa/torch/c10d_reducer.hpp>`) sums over a LibTorch
/// `c10d::ProcessGroup` of host buffers (Gloo; the CUDA backend's device-resident coefficients
/// are not accepted, so there is no NCCL path yet).
///
/// What a communicating reducer sums, and when:
/// - `projector::project()`: the coefficients U^T x of every block whose target rows are split
///   across ranks (`ogpsa/sharding.hpp`), packed into one buffer, plus their |x|^2 when a callback
///   wants diagnostics: one collective per call, none when no block has split target rows. With
///   diagnostics a second one sums what each rank measured of its projected rows (U^T x and
///   |x|^2 after), so that every rank reports the whole block's numbers.
///   Replicated blocks (DDP: the gradient was already all-reduced) and blocks split by target
///   columns add nothing.
/// - `projector::finish_reference_pass()`: the Gram matrices, norms and dot products of sharded
///   blocks, all blocks' in one collective per round (for `exact_svd` two rounds, a third when the
///   summed U^T U is not positive definite; one per Gram-Schmidt step for `mean_gradient`; the
///   rounds of `randomized_svd` are in its header), then one more of a value per block whose target
///   rows are split, so that every rank rejects the pass if any rank's rows of a basis came out
///   non-finite. Reference gradients of replicated blocks must be
///   averaged across ranks by the caller before they are fed (as DDP's backward does), so every
///   rank estimates the same basis; neither the projector nor the LibTorch wrapper does it.
///
/// Every rank must register the same blocks, in the same order, with the same families, sharding
/// and ranks of data per pass, and call `project()` / `finish_reference_pass()` together, as with
/// any collective.

#include <concepts>
#include <span>

namespace ogpsa {

/// This process's place in a distributed run.
struct rank_position {
  int rank = 0;   ///< 0 .. ranks - 1
  int ranks = 1;  ///< the number of processes
};

/// A reducer: `sum(values)` replaces `values` on every rank by their sum over all ranks (a
/// collective: every rank calls it with the same length); `position()` says where this rank
/// stands; `communicates` is false only for reducers that never leave the process.
template <class Reducer>
concept reducer = std::copy_constructible<Reducer> &&
                  requires(Reducer& r, const Reducer& cr, std::span<float> f, std::span<double> d) {
                    { Reducer::communicates } -> std::convertible_to<bool>;
                    { cr.position() } -> std::same_as<rank_position>;
                    r.sum(f);
                    r.sum(d);
                  };

/// One process: nothing to communicate; blocks must not be sharded.
struct local_reducer {
  static constexpr bool communicates = false;

  constexpr rank_position position() const noexcept { return {}; }

  /// The sum over one rank is the values themselves.
  template <class T>
  constexpr void sum(std::span<T>) const noexcept {}
};

}  // namespace ogpsa
