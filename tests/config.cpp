#include <type_traits>

#include <doctest/doctest.h>

#include <ogpsa/config.hpp>
#include <ogpsa/element.hpp>
#include <ogpsa/version.hpp>

TEST_CASE("version macros agree with the version constant") {
  CHECK(ogpsa::version ==
        OGPSA_VERSION_MAJOR * 10000 + OGPSA_VERSION_MINOR * 100 + OGPSA_VERSION_PATCH);
}

TEST_CASE("index_t is signed and pointer-sized") {
  CHECK(std::is_signed_v<ogpsa::index_t>);
  CHECK(sizeof(ogpsa::index_t) == sizeof(void*));
}

TEST_CASE("element types and their accumulators") {
  CHECK(ogpsa::element<float>);
  CHECK(ogpsa::element<const double>);
  CHECK_FALSE(ogpsa::element<int>);
  CHECK(std::is_same_v<ogpsa::accumulator_t<float, float>, float>);
  CHECK(std::is_same_v<ogpsa::accumulator_t<float, double>, double>);
  CHECK(std::is_same_v<ogpsa::working_t<double>, double>);
}
