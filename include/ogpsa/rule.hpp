#pragma once
/// \file
/// The `projection_rule` concept: what to remove from a gradient given its coefficients in the
/// subspace.
///
/// For each target-space vector x with coefficients c = U^T x (k values), a rule rewrites c in
/// place into r, the coefficients to remove, and returns a scale s; the backend then writes
/// x <- s x - U r. `apply` is `OGPSA_HOST_DEVICE` so the CUDA backend can call it in a kernel.

#include <concepts>
#include <string>

#include "ogpsa/config.hpp"
#include "ogpsa/family.hpp"

namespace ogpsa {

/// A projection rule: `apply(c, k)` for float and double coefficients, `validate()` that throws
/// for bad hyper-parameters, `supports(f)` telling whether the rule's guarantee holds on blocks
/// of family f (`projector::add_block` refuses the others), and `scales_gradient()` telling
/// whether s can differ from 1 (backends apply such rules to one-column targets only, so a rule
/// that scales supports `family::flat` alone).
template <class Rule>
concept projection_rule = std::copy_constructible<Rule> &&
                          requires(const Rule& r, float* cf, double* cd, index_t k, family f) {
                            { r.apply(cf, k) } -> std::same_as<float>;
                            { r.apply(cd, k) } -> std::same_as<double>;
                            r.validate();
                            { r.supports(f) } -> std::convertible_to<bool>;
                            { r.scales_gradient() } -> std::convertible_to<bool>;
                            { Rule::name } -> std::convertible_to<const char*>;
                          };

namespace detail {

/// The families `rule` supports, in words: "flat blocks", "flat and left blocks", ...
template <projection_rule Rule>
std::string supported_families(const Rule& rule) {
  std::string out;
  int listed = 0, count = 0;
  for (family f : {family::flat, family::left, family::right}) count += rule.supports(f) ? 1 : 0;
  for (family f : {family::flat, family::left, family::right}) {
    if (!rule.supports(f)) continue;
    if (listed > 0) out += listed + 1 == count ? " and " : ", ";
    out += to_string(f);
    ++listed;
  }
  return count == 0 ? std::string("no blocks") : out + " blocks";
}

}  // namespace detail
}  // namespace ogpsa
