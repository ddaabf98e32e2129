#include <doctest/doctest.h>

#include <ogpsa/rule.hpp>
#include <ogpsa/rules/orthogonal.hpp>

TEST_CASE_TEMPLATE("orthogonal removes every coefficient and never scales", T, float, double) {
  static_assert(ogpsa::projection_rule<ogpsa::orthogonal>);
  T c[3] = {T(-1), T(0.5), T(2)};
  CHECK(ogpsa::orthogonal{}.apply(c, 3) == T(1));
  CHECK(c[0] == T(-1));
  CHECK(c[1] == T(0.5));
  CHECK(c[2] == T(2));
  CHECK_FALSE(ogpsa::orthogonal{}.scales_gradient());
}

TEST_CASE("orthogonal supports every family") {
  for (ogpsa::family f : {ogpsa::family::flat, ogpsa::family::left, ogpsa::family::right})
    CHECK(ogpsa::orthogonal{}.supports(f));
}
