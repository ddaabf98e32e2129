#pragma once
/// \file
/// The `projection_rule` concept: what to remove from a gradient given its coefficients in the
/// subspace.
///
/// For each target-space vector x with coefficients c = U^T x (k values), a rule rewrites c in
/// place into r, the coefficients to remove, and returns a scale s; the backend then writes
/// x <- s x - U r. `apply` is `OGPSA_HOST_DEVICE` so the CUDA backend can call it in a kernel.

#include <concepts>

#include "ogpsa/config.hpp"

namespace ogpsa {

/// A projection rule: `apply(c, k)` for float and double coefficients, `validate()` that throws
/// for bad hyper-parameters, and `scales_gradient()` telling whether s can differ from 1 (such
/// rules act on flat blocks only, where one block is one vector).
template <class Rule>
concept projection_rule = std::copy_constructible<Rule> &&
                          requires(const Rule& r, float* cf, double* cd, index_t k) {
                            { r.apply(cf, k) } -> std::same_as<float>;
                            { r.apply(cd, k) } -> std::same_as<double>;
                            r.validate();
                            { r.scales_gradient() } -> std::convertible_to<bool>;
                            { Rule::name } -> std::convertible_to<const char*>;
                          };

}  // namespace ogpsa
