#pragma once
/// \file
/// The `subspace_estimator` concept: a policy that turns a reference pass into a basis.
///
/// The policy object holds hyper-parameters only. For each block and each reference pass the
/// projector creates the policy's concrete per-block state, `Estimator::state<Backend, Work>`,
/// once the block's dimension and backend are known:
///
///     state(const Estimator& params, index_t dimension, std::string block_name);
///     void feed(execution&, matrix_ref<const S, Space> columns, index_t set);  // any element S
///     subspace<Work, Backend> finish(execution&);                               // may throw
///     detail::rounds<subspace<Work, Backend>> estimate(execution&, shard_layout);  // distributed
///
/// `columns` are target-space vectors (see `ogpsa::family`), already checked to be finite.
/// `set` numbers the reference data sets (the published method uses one direction per set).
///
/// `estimate` is needed only for sharded blocks (`ogpsa/sharding.hpp`): the state holds this
/// rank's rows (or columns) of the target-space data and computes the estimate as a coroutine
/// that awaits sums across ranks (`ogpsa/detail/rounds.hpp`) of its partial Gram matrices, norms
/// and dot products; the projector drives all blocks' coroutines together, one collective per
/// round. The result holds this rank's rows of the basis (all of it when the columns are split).
/// A mergeable sketch (a streaming estimator's) would await the sum of its rank-slotted parts.

#include <concepts>

#include "ogpsa/family.hpp"
#include "ogpsa/reducer.hpp"
#include "ogpsa/sharding.hpp"

namespace ogpsa {

/// How a sharded block's target-space data is split, and where this rank stands: the argument
/// of an estimator state's `estimate`.
struct shard_layout {
  target_split split = target_split::none;
  rank_position position{};
};

template <class Estimator>
concept subspace_estimator = std::copy_constructible<Estimator> &&
                             requires(const Estimator& e, family f) {
                               e.validate();
                               { e.supports(f) } -> std::convertible_to<bool>;
                               { Estimator::name } -> std::convertible_to<const char*>;
                               typename Estimator::template state<void, float>;
                             };

}  // namespace ogpsa
