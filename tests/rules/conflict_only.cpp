#include <doctest/doctest.h>

#include <ogpsa/rule.hpp>
#include <ogpsa/rules/conflict_only.hpp>

#include "support.hpp"

using ogpsa::conflict_only;

TEST_CASE_TEMPLATE("per-direction mode removes only negative coefficients", T, float, double) {
  static_assert(ogpsa::projection_rule<conflict_only>);
  T c[4] = {T(-1), T(2), T(0), T(-3)};
  CHECK(conflict_only{}.apply(c, 4) == T(1));
  CHECK(c[0] == T(-1));
  CHECK(c[1] == T(0));
  CHECK(c[2] == T(0));
  CHECK(c[3] == T(-3));
  CHECK_FALSE(conflict_only{}.scales_gradient());
}

TEST_CASE_TEMPLATE("threshold mode with one direction follows the published rule", T, float, double) {
  const conflict_only rule{.behaviour = conflict_only::mode::threshold, .base_scale = 0.5};
  CHECK(rule.scales_gradient());
  T conflicting[1] = {T(-2)};
  CHECK(rule.apply(conflicting, 1) == T(1));
  CHECK(conflicting[0] == T(-2));  // removed
  T agreeing[1] = {T(3)};
  CHECK(rule.apply(agreeing, 1) == T(0.5));  // whole gradient scaled, nothing removed
  CHECK(agreeing[0] == T(0));
  T orthogonal[1] = {T(0)};
  CHECK(rule.apply(orthogonal, 1) == T(1));
  CHECK(orthogonal[0] == T(0));
}

TEST_CASE_TEMPLATE("threshold mode with two directions falls back to the plain projection", T, float, double) {
  const conflict_only rule{.behaviour = conflict_only::mode::threshold, .base_scale = 0.5};
  T c[2] = {T(1), T(-1)};
  CHECK(rule.apply(c, 2) == T(1));
  CHECK(c[0] == T(1));
  CHECK(c[1] == T(-1));
}

TEST_CASE("a negative or non-finite base_scale is rejected") {
  ogpsa::test::check_throws_with<ogpsa::invalid_argument>(
      [] { conflict_only{.behaviour = conflict_only::mode::threshold, .base_scale = -1}.validate(); },
      {"ogpsa::conflict_only::validate()", "base_scale", "-1"});
}

TEST_CASE_TEMPLATE("threshold mode with several directions projects or leaves the gradient unchanged", T,
                   float, double) {
  for (const ogpsa::index_t k : {2, 3}) {
    CAPTURE(k);
    const conflict_only sft{.behaviour = conflict_only::mode::threshold, .base_scale = 0.5};
    T c[3] = {T(1), T(-2), T(3)};
    CHECK(sft.apply(c, k) == T(1));  // every coefficient removed: the plain projection
    CHECK(c[0] == T(1));
    CHECK(c[1] == T(-2));
    CHECK(c[2] == T(3));
    const conflict_only dpo{.behaviour = conflict_only::mode::threshold,
                            .base_scale = 0.5,
                            .several_directions = conflict_only::fallback::unchanged};
    T d[3] = {T(1), T(-2), T(3)};
    CHECK(dpo.apply(d, k) == T(1));  // nothing removed, nothing scaled
    for (ogpsa::index_t i = 0; i < k; ++i) CHECK(d[i] == T(0));
    CHECK(d[2] == (k == 3 ? T(0) : T(3)));  // past k: untouched
  }
}
