#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/estimator.hpp>
#include <ogpsa/estimators/randomized_svd.hpp>

#include "estimate.hpp"

using ogpsa::randomized_svd;
using ogpsa::test::estimate;
namespace t = ogpsa::test;

namespace {

/// The documented accuracy of randomized subspace iteration (Saibaba, SIMAX 40(1), 2019, Thm. 1,
/// split at r = l - 2): sin <= |Omega_2 Omega_1^+| (s_{r+1} / s_k)^(2q+1), where the Gaussian factor
/// is below sqrt(k (m - r)) times a small constant with overwhelming probability; `floor` is the
/// rounding of the working type.
double documented_bound(const t::vector<double>& sigma, Eigen::Index k, Eigen::Index l, Eigen::Index q,
                        Eigen::Index m, double floor) {
  const Eigen::Index r = l - 2;
  const double gamma = sigma(r) / sigma(k - 1);
  return 10 * std::sqrt(static_cast<double>(k * (m - r))) * std::pow(gamma, static_cast<double>(2 * q + 1)) +
         floor;
}

template <class T>
constexpr double rounding = std::is_same_v<T, float> ? 1e-5 : 1e-11;

}  // namespace

TEST_CASE("randomized_svd is a subspace estimator for every family") {
  static_assert(ogpsa::subspace_estimator<randomized_svd>);
  CHECK(randomized_svd{}.supports(ogpsa::family::flat));
  CHECK(randomized_svd{}.supports(ogpsa::family::right));
}

TEST_CASE_TEMPLATE("low-rank-plus-noise: agrees with the exact subspace", T, float, double) {
  const auto data = t::low_rank_plus_noise<T>(3000, 40, 6, 1e-3, 21);
  const auto sigma = t::singular_values(data);
  for (Eigen::Index per_feed : {1, 7, 40}) {
    const auto sub = estimate<T>(randomized_svd{.rank = 6}, data, per_feed);
    REQUIRE(sub.rank() == 6);
    CHECK(t::orthonormality_error(sub.basis) < 10 * t::tolerance<T>());
    CHECK(t::sine_to_exact(sub, data) < documented_bound(sigma, 6, 16, 2, 40, rounding<T>));
    CHECK(sub.strengths[0] == doctest::Approx(sigma(0)).epsilon(10 * t::tolerance<T>()));
  }
}

TEST_CASE_TEMPLATE("decaying spectrum: each power iteration tightens the subspace", T, float, double) {
  // Singular values 0.8^i: no gap anywhere, so only the oversampled power iterations converge.
  const auto data = t::low_rank_plus_noise<T>(1500, 300, 120, 0.0, 22, 0.8);
  const auto sigma = t::singular_values(data);
  double previous = 1;
  for (Eigen::Index q : {0, 1, 2, 3}) {
    CAPTURE(q);
    const auto sub = estimate<T>(randomized_svd{.rank = 10, .power_iterations = q}, data, 300);
    const double sine = t::sine_to_exact(sub, data);
    CHECK(sine < documented_bound(sigma, 10, 20, q, 300, rounding<T>));
    CHECK(sine < std::max(previous, rounding<T>));
    previous = sine;
  }
}

TEST_CASE("the same seed gives a bit-identical basis, another seed another sample") {
  const auto data = t::low_rank_plus_noise<float>(2000, 60, 8, 1e-2, 23);
  const auto a = estimate<float>(randomized_svd{.rank = 8, .seed = 7}, data, 5);
  const auto b = estimate<float>(randomized_svd{.rank = 8, .seed = 7}, data, 5);
  CHECK(a.basis == b.basis);
  CHECK(a.strengths == b.strengths);
  const auto c = estimate<float>(randomized_svd{.rank = 8, .seed = 8}, data, 5);
  CHECK(a.basis != c.basis);
  CHECK(t::max_principal_sine(a.basis.cast<double>(), c.basis.cast<double>()) < 1e-4);
}

TEST_CASE("streaming in one block or many gives the same subspace") {
  const auto data = t::low_rank_plus_noise<double>(800, 90, 5, 1e-2, 24, 0.8);
  const auto whole = estimate<double>(randomized_svd{.rank = 5}, data, 90);
  for (Eigen::Index per_feed : {1, 4, 45}) {
    const auto split = estimate<double>(randomized_svd{.rank = 5}, data, per_feed);
    CHECK(t::max_principal_sine(whole.basis, split.basis) < 1e-12);
  }
}

TEST_CASE("wide data (more snapshots than dimensions) works the same") {
  const auto data = t::low_rank_plus_noise<double>(40, 600, 4, 1e-3, 25);
  const auto sub = estimate<double>(randomized_svd{.rank = 4}, data, 100);
  REQUIRE(sub.rank() == 4);
  CHECK(t::sine_to_exact(sub, data) < 1e-10);
}

TEST_CASE("every direction points along the data it came from") {
  const auto data = t::low_rank_plus_noise<double>(400, 20, 5, 1e-2, 26);
  const auto sub = estimate<double>(randomized_svd{.rank = 5}, data, 20);
  CHECK(t::points_along_data(sub, data));
}

TEST_CASE("the energy threshold picks the smallest rank that captures it, exactly") {
  // Squared singular values 1, 1/4, 1/16, 1/64: cumulative energy 0.753, 0.941, 0.988, 1.
  const auto data = t::low_rank_plus_noise<double>(300, 30, 4, 0.0, 27, 0.5);
  CHECK(estimate<double>(randomized_svd{.rank = 10, .energy = 0.70}, data, 30).rank() == 1);
  CHECK(estimate<double>(randomized_svd{.rank = 10, .energy = 0.95}, data, 30).rank() == 3);
  const auto sub = estimate<double>(randomized_svd{.rank = 10, .energy = 0.95}, data, 30);
  const double captured = (sub.basis.transpose() * data).squaredNorm() / data.squaredNorm();
  CHECK(sub.captured_energy == doctest::Approx(captured).epsilon(1e-12));
}

TEST_CASE("degenerate data: a rank beyond the numerical rank or min(d, m) keeps what exists, reports the rest") {
  const auto data = t::low_rank_plus_noise<double>(100, 20, 3, 0.0, 28);
  const auto sub = estimate<double>(randomized_svd{.rank = 5}, data, 20);
  CHECK(sub.rank() == 3);
  CHECK(sub.dropped == 2);
  const auto full = estimate<double>(randomized_svd{.rank = 40}, t::random_matrix<double>(100, 20, 29), 20);
  CHECK(full.rank() == 20);
  CHECK(full.dropped == 20);
  t::pass_of<randomized_svd, float> empty(randomized_svd{}, 10, "w");
  ogpsa::cpu::execution exec;
  t::check_throws_with<ogpsa::state_error>([&] { (void)empty.finish(exec); }, {"no reference snapshot"});
}

TEST_CASE("bad hyper-parameters are rejected with their values") {
  t::check_throws_with<ogpsa::invalid_argument>([] { randomized_svd{.rank = 0}.validate(); },
                                                {"ogpsa::randomized_svd::validate()", "rank", "got 0"});
  t::check_throws_with<ogpsa::invalid_argument>([] { randomized_svd{.oversampling = -1}.validate(); },
                                                {"oversampling p must be >= 0, got -1"});
  t::check_throws_with<ogpsa::invalid_argument>([] { randomized_svd{.power_iterations = -2}.validate(); },
                                                {"power_iterations q must be >= 0, got -2"});
  t::check_throws_with<ogpsa::invalid_argument>([] { randomized_svd{.energy = 1.5}.validate(); },
                                                {"energy threshold must be in (0, 1], got 1.5"});
  CHECK_NOTHROW(randomized_svd{.oversampling = 0, .power_iterations = 0}.validate());
}

TEST_CASE("split target rows: a Q whose second Cholesky-QR pass declines is finished by TSQR in one more round") {
  // One rank drives the estimate itself (a sum over one rank is the value) and replaces the Gram
  // matrix of the first Q's second Cholesky-QR pass (round 3) by zero, which no Cholesky
  // factorization accepts.
  const auto data = t::low_rank_plus_noise<double>(300, 40, 6, 1e-3, 30);
  ogpsa::cpu::execution exec;
  const randomized_svd params{.rank = 6, .oversampling = 4};
  t::pass_of<randomized_svd, double> sharded(params, data.rows(), "w");
  t::feed_columns(sharded, data, 40);
  auto task = sharded.estimate(exec, {ogpsa::target_split::rows, {0, 1}});
  const std::vector<std::size_t> lengths = t::run_zeroing_round(task, 3);
  // d and |A|_F^2; Q_0: two l x l Gram matrices and the TSQR stack; A^T Q_0; then twice Q_i's two
  // Gram matrices and A^T Q_i (the last one is B^T). l = 10, m = 40.
  const std::vector<std::size_t> expected{2, 100, 100, 100, 400, 100, 100, 400, 100, 100, 400};
  CHECK(lengths == expected);
  const auto sub = task.result();
  REQUIRE(sub.rank() == 6);
  CHECK(t::orthonormality_error(sub.basis) < 1e-12);
  CHECK(t::max_principal_sine(sub.basis, estimate<double>(params, data, 40).basis) < 1e-10);
}
