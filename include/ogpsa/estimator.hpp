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
///
/// `columns` are target-space vectors (see `ogpsa::family`), already checked to be finite.
/// `set` numbers the reference data sets (the published method uses one direction per set).

#include <concepts>

#include "ogpsa/family.hpp"

namespace ogpsa {

template <class Estimator>
concept subspace_estimator = std::copy_constructible<Estimator> &&
                             requires(const Estimator& e, family f) {
                               e.validate();
                               { e.supports(f) } -> std::convertible_to<bool>;
                               { Estimator::name } -> std::convertible_to<const char*>;
                               typename Estimator::template state<void, float>;
                             };

}  // namespace ogpsa
