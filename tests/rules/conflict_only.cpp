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
