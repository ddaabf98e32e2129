#include <algorithm>
#include <span>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/estimator.hpp>
#include <ogpsa/estimators/exact_svd.hpp>

#include "estimate.hpp"

using ogpsa::exact_svd;
using ogpsa::test::estimate;
using ogpsa::test::reference_basis;
namespace t = ogpsa::test;

TEST_CASE("exact_svd is a subspace estimator for every family") {
  static_assert(ogpsa::subspace_estimator<exact_svd>);
  CHECK(exact_svd{}.supports(ogpsa::family::right));
}

TEST_CASE_TEMPLATE("tall data: agrees with BDCSVD on low-rank-plus-noise", T, float, double) {
  const auto data = t::low_rank_plus_noise<T>(3000, 40, 6, 1e-3, 11);
  for (Eigen::Index per_feed : {1, 7, 40}) {
    const auto sub = estimate<T>(exact_svd{.rank = 6}, data, per_feed);
    REQUIRE(sub.rank() == 6);
    CHECK(t::orthonormality_error(sub.basis) < 10 * t::tolerance<T>());
    CHECK(t::max_principal_sine(sub.basis.template cast<double>(), reference_basis(data, 6)) <
          (std::is_same_v<T, float> ? 1e-3 : 1e-8));
  }
}

TEST_CASE_TEMPLATE("wide data (more snapshots than dimensions) uses the row Gram route", T, float, double) {
  const auto data = t::low_rank_plus_noise<T>(30, 500, 4, 1e-3, 12);
  const auto sub = estimate<T>(exact_svd{.rank = 4}, data, 100);
  REQUIRE(sub.rank() == 4);
  CHECK(t::orthonormality_error(sub.basis) < 10 * t::tolerance<T>());
  CHECK(t::max_principal_sine(sub.basis.template cast<double>(), reference_basis(data, 4)) <
        (std::is_same_v<T, float> ? 1e-3 : 1e-8));
}

TEST_CASE("ill-conditioned data falls back to QR and stays accurate") {
  // Singular values down to 1e-6 of the largest: the Gram route alone would lose ~1e-4 in the
  // last direction (eps * (s1/sk)^2); the QR route keeps it to ~1e-10.
  for (auto [rows, cols] : {std::pair{2000, 12}, std::pair{12, 2000}}) {
    const auto data = t::low_rank_plus_noise<double>(rows, cols, 4, 0.0, 13, 1e-2);
    const auto sub = estimate<double>(exact_svd{.rank = 4}, data, 6);
    REQUIRE(sub.rank() == 4);
    CHECK(t::orthonormality_error(sub.basis) < 1e-12);
    CHECK(t::max_principal_sine(sub.basis, reference_basis(data, 4)) < 1e-8);
    CHECK(sub.strengths[3] == doctest::Approx(1e-6).epsilon(1e-6));
  }
}

TEST_CASE("every direction points along the data it came from") {
  const auto data = t::low_rank_plus_noise<double>(400, 20, 5, 1e-2, 14);
  const auto sub = estimate<double>(exact_svd{.rank = 5}, data, 20);
  CHECK(t::points_along_data(sub, data));
}

TEST_CASE("the energy threshold picks the smallest rank that captures it") {
  // Squared singular values 1, 1/4, 1/16, 1/64 (decay 1/2): cumulative energy fractions
  // 0.753, 0.941, 0.988, 1.
  const auto data = t::low_rank_plus_noise<double>(300, 30, 4, 0.0, 15, 0.5);
  CHECK(estimate<double>(exact_svd{.rank = 10, .energy = 0.70}, data, 30).rank() == 1);
  CHECK(estimate<double>(exact_svd{.rank = 10, .energy = 0.95}, data, 30).rank() == 3);
  CHECK(estimate<double>(exact_svd{.rank = 10, .energy = 0.98}, data, 30).rank() == 3);
  CHECK(estimate<double>(exact_svd{.rank = 2, .energy = 0.98}, data, 30).rank() == 2);  // capped
  const auto sub = estimate<double>(exact_svd{.rank = 10, .energy = 1.0}, data, 30);
  CHECK(sub.rank() == 4);  // all numerically non-zero directions
  CHECK(sub.captured_energy == doctest::Approx(1.0));
}

TEST_CASE("a fixed rank beyond the numerical rank keeps what exists and reports the rest") {
  const auto data = t::low_rank_plus_noise<double>(100, 20, 3, 0.0, 16);
  const auto sub = estimate<double>(exact_svd{.rank = 5}, data, 20);
  CHECK(sub.rank() == 3);
  CHECK(sub.dropped == 2);
  const auto zero = estimate<double>(exact_svd{.rank = 2}, t::matrix<double>::Zero(50, 4), 4);
  CHECK(zero.rank() == 0);
  CHECK(zero.dropped == 2);
}

TEST_CASE("a rank larger than min(d, m) keeps every direction the data has and reports the shortfall") {
  for (auto [rows, cols] : {std::pair{64, 32}, std::pair{32, 64}}) {  // tall and wide routes
    const auto sub = estimate<float>(exact_svd{.rank = 40}, t::random_matrix<float>(rows, cols, 17), 16);
    CHECK(sub.rank() == 32);
    CHECK(sub.dropped == 8);
    CHECK(t::orthonormality_error(sub.basis) < 10 * t::tolerance<float>());
  }
}

TEST_CASE("bad hyper-parameters are rejected with their values") {
  t::check_throws_with<ogpsa::invalid_argument>([] { exact_svd{.rank = 0}.validate(); }, {"rank", "got 0"});
  for (double e : {0.0, -0.1, 1.5})
    t::check_throws_with<ogpsa::invalid_argument>([&] { exact_svd{.rank = 4, .energy = e}.validate(); },
                                                  {"energy threshold must be in (0, 1]"});
}

TEST_CASE("split target rows: a third round, TSQR, when the summed U^T U is not positive definite") {
  // One rank drives the estimate itself (a sum over one rank is the value) and replaces the second
  // round's U^T U by zero, which no Cholesky factorization accepts: the estimate must then take the
  // TSQR route in a third round and still return the exact basis.
  const auto data = t::low_rank_plus_noise<double>(200, 12, 4, 1e-3, 18);
  ogpsa::cpu::execution exec;
  t::pass_of<exact_svd, double> sharded(exact_svd{.rank = 4}, data.rows(), "w");
  t::feed_columns(sharded, data, 12);
  auto task = sharded.estimate(exec, {ogpsa::target_split::rows, {0, 1}});
  const std::vector<std::size_t> lengths = t::run_zeroing_round(task, 2);
  // The Gram matrix and d, U^T U, the stack of the one rank's R.
  CHECK(lengths == std::vector<std::size_t>{12 * 12 + 1, 4 * 4, 12 * 12});
  const auto sub = task.result();
  REQUIRE(sub.rank() == 4);
  CHECK(t::orthonormality_error(sub.basis) < 1e-12);
  CHECK(t::max_principal_sine(sub.basis, reference_basis(data, 4)) < 1e-10);
}
