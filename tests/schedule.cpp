#include <doctest/doctest.h>

#include <ogpsa/schedule.hpp>

#include "support.hpp"

TEST_CASE("every_n_steps is due after n steps") {
  static_assert(ogpsa::refresh_schedule<ogpsa::every_n_steps>);
  const ogpsa::every_n_steps s{.n = 3};
  CHECK_FALSE(s.due(0));
  CHECK_FALSE(s.due(2));
  CHECK(s.due(3));
  ogpsa::test::check_throws_with<ogpsa::invalid_argument>([] { ogpsa::every_n_steps{.n = 0}.validate(); },
                                                          {"ogpsa::every_n_steps::validate()", "got 0"});
}

TEST_CASE("fixed_basis is never due") {
  static_assert(ogpsa::refresh_schedule<ogpsa::fixed_basis>);
  CHECK_FALSE(ogpsa::fixed_basis{}.due(1000000));
}
