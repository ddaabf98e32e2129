// Every estimator, end to end through the projector, gives the same bits on any number of threads:
// the bases it commits and the gradients projected on them.

#include <doctest/doctest.h>

#include <ogpsa/ogpsa.hpp>

#include "cpu/eigen_threads.hpp"
#include "support.hpp"
#include "whole_pass.hpp"

namespace t = ogpsa::test;

namespace {

template <class Estimator>
void check_same_bits_on_any_thread_count(const Estimator& estimator) {
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

}  // namespace

TEST_CASE("mean_gradient: the same bases and projections on 1, 2, 3 and 8 threads") {
  check_same_bits_on_any_thread_count(ogpsa::mean_gradient{});
}

TEST_CASE("exact_svd: the same bases and projections on 1, 2, 3 and 8 threads") {
  check_same_bits_on_any_thread_count(ogpsa::exact_svd{.rank = 8});
}

TEST_CASE("randomized_svd: the same bases and projections on 1, 2, 3 and 8 threads") {
  check_same_bits_on_any_thread_count(ogpsa::randomized_svd{.rank = 8});
}

TEST_CASE("single_pass_svd: the same bases and projections on 1, 2, 3 and 8 threads") {
  check_same_bits_on_any_thread_count(ogpsa::single_pass_svd{.rank = 8});
}

TEST_CASE("incremental_svd: the same bases and projections on 1, 2, 3 and 8 threads") {
  // Blocks of 64 columns: few updates, each a product of dozens of columns.
  check_same_bits_on_any_thread_count(ogpsa::incremental_svd{.rank = 8, .block = 64});
}
