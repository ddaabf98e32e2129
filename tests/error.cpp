#include <stdexcept>
#include <string>

#include <doctest/doctest.h>

#include <ogpsa/error.hpp>

TEST_CASE("the exception hierarchy derives from the standard exceptions") {
  CHECK(std::is_base_of_v<std::invalid_argument, ogpsa::invalid_argument>);
  CHECK(std::is_base_of_v<ogpsa::invalid_argument, ogpsa::shape_error>);
  CHECK(std::is_base_of_v<ogpsa::invalid_argument, ogpsa::layout_error>);
  CHECK(std::is_base_of_v<std::domain_error, ogpsa::numeric_error>);
  CHECK(std::is_base_of_v<std::logic_error, ogpsa::state_error>);
  CHECK(std::is_base_of_v<std::runtime_error, ogpsa::backend_error>);
  CHECK(std::is_base_of_v<ogpsa::backend_error, ogpsa::out_of_memory>);
  CHECK(std::is_base_of_v<ogpsa::backend_error, ogpsa::communication_error>);
}

TEST_CASE("OGPSA_REQUIRE formats where, what and the value seen") {
  const int rank = 40;
  try {
    OGPSA_REQUIRE(rank <= 32, invalid_argument, "ogpsa::exact_svd::finish",
                  "rank " << rank << " exceeds min(d, m) = " << 32);
    FAIL("no exception");
  } catch (const ogpsa::invalid_argument& e) {
    CHECK(std::string(e.what()) == "ogpsa::exact_svd::finish(): rank 40 exceeds min(d, m) = 32");
  }
  CHECK_NOTHROW(OGPSA_REQUIRE(rank > 0, state_error, "f", "never"));
}
