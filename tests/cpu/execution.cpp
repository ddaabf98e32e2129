#include <doctest/doctest.h>

#include <ogpsa/cpu/execution.hpp>

#include "support.hpp"

namespace t = ogpsa::test;

TEST_CASE("execution::threads caps the threads of a call, 0 takes OpenMP's default") {
  CHECK(ogpsa::cpu::max_threads({.threads = 0}) >= 1);
#if defined(_OPENMP)
  CHECK(ogpsa::cpu::max_threads({.threads = 3}) == 3);
  CHECK(ogpsa::cpu::max_threads({}) == omp_get_max_threads());
#else
  CHECK(ogpsa::cpu::max_threads({.threads = 3}) == 1);  // without OpenMP: the calling thread only
#endif
}

TEST_CASE("a negative thread count is a clear error") {
  t::check_throws_with<ogpsa::invalid_argument>([] { (void)ogpsa::cpu::max_threads({.threads = -2}); },
                                                {"ogpsa::cpu::max_threads()", "threads", "-2"});
}
