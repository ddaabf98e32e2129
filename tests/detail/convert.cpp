#include <cmath>
#include <limits>

#include <doctest/doctest.h>

#include <ogpsa/bfloat16.hpp>
#include <ogpsa/detail/convert.hpp>
#include <ogpsa/float16.hpp>

using ogpsa::detail::narrow;
using ogpsa::detail::widen;

TEST_CASE("widen and narrow convert arithmetic types directly") {
  CHECK(widen<double>(0.1f) == static_cast<double>(0.1f));
  CHECK(narrow<float>(0.1) == 0.1f);
  CHECK(narrow<double>(0.25f) == 0.25);
}

TEST_CASE("16-bit types widen exactly and narrow with round to nearest even, through float") {
  const auto third = narrow<ogpsa::bfloat16>(1.0 / 3.0);
  CHECK(third.bits == ogpsa::bfloat16(1.0f / 3.0f).bits);
  CHECK(widen<double>(third) == static_cast<double>(static_cast<float>(third)));
  CHECK(widen<float>(narrow<ogpsa::float16>(0.5f)) == 0.5f);
  CHECK(narrow<ogpsa::float16>(1e6f).bits == 0x7c00u);  // overflow to infinity
  CHECK(std::isnan(widen<float>(narrow<ogpsa::bfloat16>(std::numeric_limits<double>::quiet_NaN()))));
}
