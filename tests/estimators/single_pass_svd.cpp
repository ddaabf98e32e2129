#include <cmath>

#include <doctest/doctest.h>

#include <ogpsa/estimator.hpp>
#include <ogpsa/estimators/single_pass_svd.hpp>

#include "estimate.hpp"

using ogpsa::single_pass_svd;
using ogpsa::test::estimate;
namespace t = ogpsa::test;

namespace {

/// |A - U U^T A|_F^2: the energy the basis misses.
template <class T>
double missed_energy(const t::matrix<T>& data, const ogpsa::subspace<T, t::cpu_backend>& s) {
  const t::matrix<double> a = data.template cast<double>(), u = s.basis.template cast<double>();
  return (a - u * (u.transpose() * a)).squaredNorm();
}

/// The optimum |A - A_k|_F^2.
double tail_energy(const t::vector<double>& sigma, Eigen::Index k) {
  return sigma.tail(sigma.size() - k).squaredNorm();
}

}  // namespace

TEST_CASE("single_pass_svd is a subspace estimator for every family") {
  static_assert(ogpsa::subspace_estimator<single_pass_svd>);
  CHECK(single_pass_svd{}.supports(ogpsa::family::left));
}

TEST_CASE_TEMPLATE("missed energy within the Nystrom bound, on low-rank-plus-noise and decaying spectra", T,
                   float, double) {
  // TYUC17 Thm. 4.1 bounds the expected trace error of the truncated Nystrom approximation by
  // (1 + k / (p - 1)) |A - A_k|_F^2, and the basis misses at most that; 3x covers the spread of
  // single draws (Markov, over 12 seeds here).
  struct scenario {
    Eigen::Index rows, cols, rank, k;
    double noise, decay;
  };
  for (const scenario& c : {scenario{2000, 40, 6, 6, 1e-2, 0.7}, scenario{600, 400, 150, 10, 0.0, 0.9}}) {
    const auto data = t::low_rank_plus_noise<T>(c.rows, c.cols, c.rank, c.noise, 31, c.decay);
    const auto sigma = t::singular_values(data);
    for (std::uint64_t seed = 0; seed < 6; ++seed) {
      const auto sub = estimate<T>(single_pass_svd{.rank = c.k, .seed = seed}, data, 7);
      REQUIRE(sub.rank() == c.k);
      CHECK(t::orthonormality_error(sub.basis) < 10 * t::tolerance<T>());
      CHECK(missed_energy(data, sub) <= 3 * (1 + static_cast<double>(c.k) / 9) * tail_energy(sigma, c.k));
      // Strengths never exceed the exact singular values, and the reported energy is a lower bound.
      for (Eigen::Index i = 0; i < c.k; ++i) CHECK(sub.strengths[i] <= sigma(i) * (1 + t::tolerance<T>()));
      CHECK(sub.captured_energy <= 1 - missed_energy(data, sub) / data.template cast<double>().squaredNorm() +
                                       10 * t::tolerance<T>());
    }
  }
}

TEST_CASE_TEMPLATE("principal angles shrink like one power iteration", T, float, double) {
  // H = A A^T Omega: the range of randomized_svd's first power iteration, so the angle to the exact
  // top-k directions is at most about (s_{l-1} / s_k)^2 (see randomized_svd's tests for the constant).
  const auto data = t::low_rank_plus_noise<T>(1500, 300, 120, 0.0, 32, 0.8);
  const auto sigma = t::singular_values(data);
  const auto sub = estimate<T>(single_pass_svd{.rank = 10, .oversampling = 20}, data, 50);
  const double gamma = sigma(28) / sigma(9);
  CHECK(t::sine_to_exact(sub, data) < 10 * std::sqrt(10.0 * 272) * gamma * gamma);
  // Exactly low-rank data within the sketch is recovered to rounding.
  const auto low = t::low_rank_plus_noise<T>(1000, 50, 5, 0.0, 33);
  CHECK(t::sine_to_exact(estimate<T>(single_pass_svd{.rank = 5}, low, 50), low) < 100 * t::tolerance<T>());
}

TEST_CASE("the same seed gives a bit-identical basis, chunking changes only rounding") {
  const auto data = t::low_rank_plus_noise<float>(2000, 60, 8, 1e-2, 34);
  const auto a = estimate<float>(single_pass_svd{.rank = 8, .seed = 3}, data, 6);
  const auto b = estimate<float>(single_pass_svd{.rank = 8, .seed = 3}, data, 6);
  CHECK(a.basis == b.basis);
  CHECK(a.strengths == b.strengths);
  CHECK(a.basis != estimate<float>(single_pass_svd{.rank = 8, .seed = 4}, data, 6).basis);
  const auto d = t::low_rank_plus_noise<double>(800, 90, 5, 1e-2, 35);
  const auto whole = estimate<double>(single_pass_svd{.rank = 5}, d, 90);
  for (Eigen::Index per_feed : {1, 13}) {
    const auto split = estimate<double>(single_pass_svd{.rank = 5}, d, per_feed);
    CHECK(t::max_principal_sine(whole.basis, split.basis) < 1e-12);
  }
}

TEST_CASE("every direction points along the data it came from") {
  const auto data = t::low_rank_plus_noise<double>(400, 20, 5, 1e-2, 36);
  const auto sub = estimate<double>(single_pass_svd{.rank = 5}, data, 3);
  CHECK(t::points_along_data(sub, data));
}

TEST_CASE("the energy threshold uses the sketch's lower bound") {
  // Squared singular values 1, 1/4, 1/16, 1/64 (cumulative 0.753, 0.941, 0.988, 1), exactly low
  // rank, so the sketch is exact and so is the choice.
  const auto data = t::low_rank_plus_noise<double>(300, 30, 4, 0.0, 37, 0.5);
  CHECK(estimate<double>(single_pass_svd{.rank = 10, .energy = 0.70}, data, 30).rank() == 1);
  CHECK(estimate<double>(single_pass_svd{.rank = 10, .energy = 0.95}, data, 30).rank() == 3);
  CHECK(estimate<double>(single_pass_svd{.rank = 10, .energy = 1.0}, data, 30).rank() == 4);
}

TEST_CASE("degenerate data and bad hyper-parameters") {
  const auto data = t::low_rank_plus_noise<double>(100, 20, 3, 0.0, 38);
  const auto sub = estimate<double>(single_pass_svd{.rank = 5}, data, 4);
  CHECK(sub.rank() == 3);
  CHECK(sub.dropped == 2);
  const auto full = estimate<double>(single_pass_svd{.rank = 21}, t::random_matrix<double>(100, 20, 39), 20);
  CHECK(full.rank() == 20);  // min(d, m)
  CHECK(full.dropped == 1);
  t::pass_of<single_pass_svd, double> empty(single_pass_svd{}, 10, "w");
  ogpsa::cpu::execution exec;
  t::check_throws_with<ogpsa::state_error>([&] { (void)empty.finish(exec); }, {"no reference snapshot"});
  t::check_throws_with<ogpsa::invalid_argument>([] { single_pass_svd{.oversampling = -3}.validate(); },
                                                {"ogpsa::single_pass_svd::validate()", "got -3"});
  t::check_throws_with<ogpsa::invalid_argument>([] { single_pass_svd{.rank = 0}.validate(); }, {"got 0"});
}
