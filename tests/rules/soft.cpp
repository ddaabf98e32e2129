#include <limits>

#include <doctest/doctest.h>

#include <ogpsa/rule.hpp>
#include <ogpsa/rules/soft.hpp>

#include "support.hpp"

TEST_CASE_TEMPLATE("soft removes the fraction alpha of each coefficient", T, float, double) {
  static_assert(ogpsa::projection_rule<ogpsa::soft>);
  T c[2] = {T(-2), T(4)};
  CHECK(ogpsa::soft{.alpha = 0.25}.apply(c, 2) == T(1));
  CHECK(c[0] == T(-0.5));
  CHECK(c[1] == T(1));
}

TEST_CASE("soft supports every family and never scales") {
  for (ogpsa::family f : {ogpsa::family::flat, ogpsa::family::left, ogpsa::family::right})
    CHECK(ogpsa::soft{.alpha = 0.5}.supports(f));
  CHECK_FALSE(ogpsa::soft{.alpha = 0.5}.scales_gradient());
}

TEST_CASE("alpha outside [0, 1] is rejected with its value") {
  CHECK_NOTHROW(ogpsa::soft{.alpha = 0.0}.validate());
  CHECK_NOTHROW(ogpsa::soft{.alpha = 1.0}.validate());
  ogpsa::test::check_throws_with<ogpsa::invalid_argument>([] { ogpsa::soft{.alpha = 1.5}.validate(); },
                                                          {"ogpsa::soft::validate()", "1.5"});
  ogpsa::test::check_throws_with<ogpsa::invalid_argument>([] { ogpsa::soft{.alpha = -0.1}.validate(); },
                                                          {"-0.1"});
  CHECK_THROWS_AS(ogpsa::soft{.alpha = std::numeric_limits<double>::quiet_NaN()}.validate(),
                  ogpsa::invalid_argument);
}
