#pragma once
/// \file
/// The `subspace_estimator` concept: a policy that turns a reference pass into a basis.
///
/// The policy object holds hyper-parameters only (`subspace_estimator`). For each block and each
/// reference pass the projector creates the policy's concrete per-block pass,
/// `Estimator::pass<Backend, Work>`, once the block's dimension and backend are known (the
/// projector's saved `state()` is another thing: its bases and counters); the projector checks it
/// against `estimator_pass_for` with its real backend:
///
///     pass(const Estimator& params, index_t dimension, std::string block_name);
///     void feed(execution&, matrix_ref<const S, Space> columns, index_t set);  // any element S
///     subspace<Work, Backend> finish(execution&);                               // may throw
///     detail::rounds<subspace<Work, Backend>> estimate(execution&, target_shard);  // distributed
///
/// `columns` are target-space vectors (see `ogpsa::family`), already checked to be finite.
/// `set` numbers the reference data sets (the published method uses one direction per set).
///
/// `estimate` is needed only for sharded blocks (`ogpsa/sharding.hpp`): the pass holds this
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
/// of an estimator pass's `estimate`.
struct target_shard {
  target_split split = target_split::none;
  rank_position position{};
};

/// The former name of `target_shard`.
using shard_layout [[deprecated("renamed ogpsa::target_shard")]] = target_shard;

namespace detail {

template <class Estimator>
concept declares_pass = requires { typename Estimator::template pass<void, float>; };
template <class Estimator>
concept declares_former_state =  // a member template under the former name of `pass`
    requires { typename Estimator::template state<void, float>; };  // former name

template <class Estimator, class Backend, class Work>
struct pass_of {
  using type = typename Estimator::template pass<Backend, Work>;
};
/// An estimator written against the former name of `pass`, `state<Backend, Work>`.
template <class Estimator, class Backend, class Work>
  requires(!declares_pass<Estimator> && declares_former_state<Estimator>)
struct pass_of<Estimator, Backend, Work> {
  using type = typename Estimator::template state<Backend, Work>;  // former name
};

template <class Estimator>
[[deprecated("declare the estimator's pass<Backend, Work>: state<Backend, Work> is its former name")]]
constexpr bool declares_only_former_state() { return true; }

/// True; warns (deprecated) when the estimator declares `state<Backend, Work>` and no `pass`.
template <class Estimator>
constexpr bool warn_on_former_state() {
  if constexpr (declares_pass<Estimator>) return true;
  else return declares_only_former_state<Estimator>();
}

}  // namespace detail

/// An estimator policy: copyable hyper-parameters with `validate()`, `supports(family)`, a static
/// `name` and a member template `pass<Backend, Work>` (checked by `estimator_pass_for`). A member
/// template `state<Backend, Work>`, the former name of `pass`, is still accepted but deprecated.
template <class Estimator>
concept subspace_estimator = std::copy_constructible<Estimator> &&
                             requires(const Estimator& e, family f) {
                               e.validate();
                               { e.supports(f) } -> std::convertible_to<bool>;
                               { Estimator::name } -> std::convertible_to<const char*>;
                             } &&
                             (detail::declares_pass<Estimator> || detail::declares_former_state<Estimator>);

/// The estimator's per-block work for one reference pass: `Estimator::pass<Backend, Work>`.
template <class Estimator, class Backend, class Work>
using estimator_pass = typename detail::pass_of<Estimator, Backend, Work>::type;

/// The per-block pass `Estimator::pass<Backend, Work>` keeps the contract above: it is
/// constructible from (const Estimator&, index_t dimension, std::string block_name), takes
/// target-space columns through `feed(execution&, matrix_ref<const S, Space>, index_t set)`
/// (checked with S = Work) and gives the estimate through `finish(execution&)` as a
/// `subspace<Work, Backend>`.
// clang-format off (clang-format 14 mangles this concept's layout)
template <class Estimator, class Backend, class Work>
concept estimator_pass_for =
    std::constructible_from<estimator_pass<Estimator, Backend, Work>, const Estimator&, index_t,
                            std::string> &&
    requires(estimator_pass<Estimator, Backend, Work>& pass, typename Backend::execution& exec,
             detail::matrix_ref<const Work, typename Backend::memory_space> columns, index_t set) {
      pass.feed(exec, columns, set);
      { pass.finish(exec) } -> std::same_as<subspace<Work, Backend>>;
    };
// clang-format on

}  // namespace ogpsa
