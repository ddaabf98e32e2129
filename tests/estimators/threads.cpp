// Every estimator, end to end through the projector, gives the same bits on any number of threads:
// the bases it commits and the gradients projected on them.

#include <doctest/doctest.h>

#include <ogpsa/ogpsa.hpp>

#include "cpu/eigen_threads.hpp"
#include "policies.hpp"
#include "support.hpp"
#include "whole_pass.hpp"

namespace t = ogpsa::test;

TEST_CASE_TEMPLATE_DEFINE("the same bases and projections on 1, 2, 3 and 8 threads", E,
                          same_bits_on_any_thread_count) {
  const E estimator = t::on_wide_blocks<E>();
  const t::eigen_threads eigen(8);
  const auto blocks = t::wide_blocks(!estimator.supports(ogpsa::family::left));
  const t::cycle_outcome one = t::whole_cycle(estimator, 1, blocks);
  for (const auto& basis : one.bases) REQUIRE(basis.cols() >= 1);
  for (const int threads : {2, 3, 8}) {
    CAPTURE(threads);
    const t::cycle_outcome many = t::whole_cycle(estimator, threads, blocks);
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      CAPTURE(i);
      CHECK(t::same_bits(many.bases[i], one.bases[i]));
      CHECK(t::same_bits(many.projected[i], one.projected[i]));
    }
  }
}
TEST_CASE_TEMPLATE_APPLY(same_bits_on_any_thread_count, ogpsa::estimators);
