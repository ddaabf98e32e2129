#include <cmath>
#include <cstdint>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/detail/random.hpp>

using ogpsa::detail::gaussian_matrix;

TEST_CASE("philox matches the published known-answer vectors of Philox4x32-10") {
  // Random123's kat_vectors: counter, key -> output.
  using words = std::array<std::uint32_t, 4>;
  CHECK(ogpsa::detail::philox({0, 0, 0, 0}, {0, 0}) == words{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  CHECK(ogpsa::detail::philox({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}) ==
        words{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  CHECK(ogpsa::detail::philox({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}) ==
        words{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

TEST_CASE("gaussian_matrix is determined by its seed, and a larger matrix starts with a smaller one") {
  const auto a = gaussian_matrix(50, 7, 42);
  CHECK(a == gaussian_matrix(50, 7, 42));
  CHECK(a != gaussian_matrix(50, 7, 43));
  CHECK((a - gaussian_matrix(50, 7, 42ULL + (1ULL << 32))).cwiseAbs().minCoeff() >
        0);  // the seed's high half counts
  CHECK(gaussian_matrix(351, 9, 42).topLeftCorner(50, 7) == a);
}

TEST_CASE("any panel of rows is the same bits, whatever its size, start or element type") {
  constexpr ogpsa::index_t rows = 1001, cols = 5;
  const auto whole = gaussian_matrix(rows, cols, 9);
  for (ogpsa::index_t panel : {1, 2, 3, 64, 333, 1001}) {
    CAPTURE(panel);
    std::vector<double> out(static_cast<std::size_t>(rows * cols));
    std::vector<float> narrow(out.size());
    for (ogpsa::index_t first = 0; first < rows; first += panel) {
      const ogpsa::index_t n = std::min(panel, rows - first);
      ogpsa::detail::gaussian_panel(9, first, n, cols, out.data() + first, rows);
      ogpsa::detail::gaussian_panel(9, first, n, cols, narrow.data() + first, rows);
    }
    CHECK(Eigen::Map<const ogpsa::host_matrix>(out.data(), rows, cols) == whole);
    CHECK(Eigen::Map<const Eigen::MatrixXf>(narrow.data(), rows, cols) == whole.cast<float>());
  }
}

TEST_CASE("gaussian_matrix entries are standard normal, and its columns and rows are uncorrelated") {
  const auto a = gaussian_matrix(400000, 2, 7);
  const double n = static_cast<double>(a.rows());
  for (Eigen::Index j = 0; j < 2; ++j) {
    const auto c = a.col(j).array();
    const double mean = c.mean();
    const double variance = (c - mean).square().sum() / n;
    const double fourth = (c - mean).pow(4).sum() / n;
    // Standard errors of the mean, variance and fourth moment at n = 4e5: 1.6e-3, 2.2e-3, 1.7e-2.
    CHECK(std::abs(mean) < 8e-3);
    CHECK(std::abs(variance - 1) < 1.1e-2);
    CHECK(std::abs(fourth - 3) < 9e-2);
    CHECK(static_cast<double>((c.abs() < 1).count()) / n == doctest::Approx(0.6827).epsilon(5e-3));
  }
  // Correlations (standard error 1.6e-3): between columns (counters differing in j), between the
  // two entries of one pair and between neighbouring pairs (counters differing in p).
  const auto c0 = a.col(0).array();
  CHECK(std::abs((c0 * a.col(1).array()).mean()) < 8e-3);
  const Eigen::Index half = a.rows() / 2;
  const Eigen::Map<const ogpsa::host_matrix, 0, Eigen::InnerStride<2>> even(a.data(), half, 1),
      odd(a.data() + 1, half, 1);
  CHECK(std::abs((even.array() * odd.array()).mean()) < 1.2e-2);
  CHECK(std::abs((even.topRows(half - 1).array() * even.bottomRows(half - 1).array()).mean()) < 1.2e-2);
}
