#include <cmath>

#include <doctest/doctest.h>

#include <ogpsa/detail/random.hpp>

TEST_CASE("gaussian_matrix is determined by its seed") {
  const auto a = ogpsa::detail::gaussian_matrix(50, 7, 42);
  CHECK(a == ogpsa::detail::gaussian_matrix(50, 7, 42));
  CHECK(a != ogpsa::detail::gaussian_matrix(50, 7, 43));
  // Filled column by column from one stream: a taller matrix starts with the same entries.
  CHECK(ogpsa::detail::gaussian_matrix(350, 1, 42).topRows(50) == a.col(0));
}

TEST_CASE("gaussian_matrix entries are standard normal") {
  const auto a = ogpsa::detail::gaussian_matrix(400000, 1, 7);
  const double n = static_cast<double>(a.size());
  const double mean = a.mean();
  const double variance = (a.array() - mean).square().sum() / n;
  const double fourth = (a.array() - mean).pow(4).sum() / n;
  // Standard errors of the mean, variance and fourth moment at n = 4e5: 1.6e-3, 2.2e-3, 1.7e-2.
  CHECK(std::abs(mean) < 8e-3);
  CHECK(std::abs(variance - 1) < 1.1e-2);
  CHECK(std::abs(fourth - 3) < 9e-2);
  CHECK(static_cast<double>((a.array().abs() < 1).count()) / n == doctest::Approx(0.6827).epsilon(5e-3));
}
