#pragma once
/// \file
/// The `subspace_estimator` concept: a policy that turns a reference pass into a basis.
///
/// The policy object holds hyper-parameters only (`subspace_estimator`). For each block and each
/// reference pass the projector creates the policy's concrete per-block state,
/// `Estimator::state<Backend, Work>`, once the block's dimension and backend are known; the
/// projector checks it against `estimator_state_for` with its real backend:
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
#include <string>

#include "ogpsa/config.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/family.hpp"
#include "ogpsa/reducer.hpp"
#include "ogpsa/sharding.hpp"
#include "ogpsa/subspace.hpp"

namespace ogpsa {

/// How a sharded block's target-space data is split, and where this rank stands: the argument
/// of an estimator state's `estimate`.
struct shard_layout {
  target_split split = target_split::none;
  rank_position position{};
};

/// An estimator policy: copyable hyper-parameters with `validate()`, `supports(family)`, a static
/// `name` and a member template `state<Backend, Work>` (checked by `estimator_state_for`).
template <class Estimator>
concept subspace_estimator = std::copy_constructible<Estimator> &&
                             requires(const Estimator& e, family f) {
                               e.validate();
                               { e.supports(f) } -> std::convertible_to<bool>;
                               { Estimator::name } -> std::convertible_to<const char*>;
                               typename Estimator::template state<void, float>;
                             };

/// The per-block state `Estimator::state<Backend, Work>` keeps the contract above: it is
/// constructible from (const Estimator&, index_t dimension, std::string block_name), takes
/// target-space columns through `feed(execution&, matrix_ref<const S, Space>, index_t set)`
/// (checked with S = Work) and gives the estimate through `finish(execution&)` as a
/// `subspace<Work, Backend>`.
// clang-format off (clang-format 14 mangles this concept's layout)
template <class Estimator, class Backend, class Work>
concept estimator_state_for =
    std::constructible_from<typename Estimator::template state<Backend, Work>, const Estimator&, index_t,
                            std::string> &&
    requires(typename Estimator::template state<Backend, Work>& state, typename Backend::execution& exec,
             detail::matrix_ref<const Work, typename Backend::memory_space> columns, index_t set) {
      state.feed(exec, columns, set);
      { state.finish(exec) } -> std::same_as<subspace<Work, Backend>>;
    };
// clang-format on

}  // namespace ogpsa
