#include <cmath>
#include <limits>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/bfloat16.hpp>
#include <ogpsa/cpu/detail/packed_gemm.hpp>

#include "support.hpp"

using ogpsa::index_t;
namespace d = ogpsa::cpu::detail;
namespace t = ogpsa::test;

namespace {

using packing = d::packed_basis<float>::packing;

/// A column-major m x cols matrix inside a larger one (leading dimension m + 3), the rows below it
/// holding a sentinel that no kernel may touch.
template <class T>
struct padded_matrix {
  static constexpr T sentinel = T(-777);
  index_t rows, cols, ld;
  t::matrix<T> storage;

  padded_matrix(const t::matrix<T>& values)
      : rows(values.rows()),
        cols(values.cols()),
        ld(values.rows() + 3),
        storage(t::matrix<T>::Constant(values.rows() + 3, values.cols(), sentinel)) {
    storage.topRows(rows) = values;
  }
  T* data() { return storage.data(); }
  t::matrix<T> values() const { return storage.topRows(rows); }
  bool padding_untouched() const { return (storage.bottomRows(3).array() == sentinel).all(); }
};

/// The bound on the error of any order of summing n products: gamma_n times the sum of their magnitudes.
template <class T>
double gamma(index_t n) {
  const double nu = static_cast<double>(n) * t::unit_roundoff<T>();
  return nu / (1 - nu);
}

template <class T>
t::matrix<T> coefficients(const t::matrix<T>& u, padded_matrix<T>& x, index_t block_bytes) {
  d::packed_basis<T> pack;
  pack.pack(d::packed_basis<T>::packing::rows, 0, u.data(), u.rows(), u.cols(), u.rows());
  d::packed_scratch<T> scratch;
  t::matrix<T> c = t::matrix<T>::Constant(u.cols(), x.cols, T(99));
  d::packed_coefficients(pack, x.data(), x.ld, x.cols, c.data(), c.rows(), scratch, block_bytes);
  return c;
}

template <class T>
t::matrix<T> update(const t::matrix<T>& u, padded_matrix<T> x, const t::matrix<T>& r, const std::vector<T>& s,
                    index_t block_bytes) {
  d::packed_basis<T> pack;
  pack.pack(d::packed_basis<T>::packing::panels, 0, u.data(), u.rows(), u.cols(), u.rows());
  d::packed_scratch<T> scratch;
  d::packed_update(pack, x.data(), x.ld, x.cols, r.data(), r.rows(), s.data(), scratch, block_bytes);
  CHECK(x.padding_untouched());
  return x.values();
}

const index_t shapes[][3] = {  // m, k, columns: partial packets, panels and column blocks, k across blocks
    {1, 1, 1},     {2, 3, 1},   {7, 1, 13},    {33, 17, 5},  {100, 16, 12},
    {257, 37, 25}, {64, 64, 7}, {300, 65, 14}, {129, 100, 3}};

}  // namespace

TEST_CASE_TEMPLATE("packed coefficients are U^T X within the error bound of any summation order", T, float,
                   double) {
  for (const auto& shape : shapes) {
    const index_t m = shape[0], k = shape[1], n = shape[2];
    CAPTURE(m);
    CAPTURE(k);
    CAPTURE(n);
    const t::matrix<T> u = t::random_matrix<T>(m, k, 1);
    padded_matrix<T> x(t::random_matrix<T>(m, n, 2));
    const t::matrix<T> c = coefficients(u, x, d::packed_block_bytes);
    const t::matrix<double> exact = t::to_double(u).transpose() * t::to_double(x.values());
    const t::matrix<double> magnitude =
        t::to_double(u).cwiseAbs().transpose() * t::to_double(x.values()).cwiseAbs();
    CHECK(((t::to_double(c) - exact).cwiseAbs().array() <= gamma<T>(m) * magnitude.array()).all());
    CHECK(x.padding_untouched());
    // Rows are summed in order whatever the blocks of rows: the same bits with tiny blocks.
    CHECK(t::same_bits(c, coefficients(u, x, 64)));
  }
}

TEST_CASE_TEMPLATE("the packed update is X diag(s) - U R within its error bound, rows past m untouched", T,
                   float, double) {
  for (const auto& shape : shapes) {
    const index_t m = shape[0], k = shape[1], n = shape[2];
    CAPTURE(m);
    CAPTURE(k);
    CAPTURE(n);
    const t::matrix<T> u = t::random_matrix<T>(m, k, 3), r = t::random_matrix<T>(k, n, 4);
    const t::matrix<T> x0 = t::random_matrix<T>(m, n, 5);
    std::vector<T> s(static_cast<std::size_t>(n), T(1));
    for (index_t j = 0; j < n; j += 3) s[static_cast<std::size_t>(j)] = T(0.5) + T(j);
    const t::matrix<T> x = update(u, padded_matrix<T>(x0), r, s, d::packed_block_bytes);
    const Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>> scales(s.data(), n);
    const t::matrix<double> scaled = t::to_double(x0) * t::to_double(scales).asDiagonal();
    const t::matrix<double> exact = scaled - t::to_double(u) * t::to_double(r);
    const t::matrix<double> magnitude =
        scaled.cwiseAbs() + t::to_double(u).cwiseAbs() * t::to_double(r).cwiseAbs();
    CHECK(((t::to_double(x) - exact).cwiseAbs().array() <= gamma<T>(k + 1) * magnitude.array()).all());
    CHECK(t::same_bits(x, update(u, padded_matrix<T>(x0), r, s, 64)));
  }
}

TEST_CASE("a 16-bit basis is packed as its values widened to the work type") {
  const t::matrix<ogpsa::bfloat16> narrow = t::random_matrix<ogpsa::bfloat16>(70, 9, 6);
  const t::matrix<float> wide = narrow.unaryExpr([](ogpsa::bfloat16 v) { return static_cast<float>(v); });
  for (const packing l : {packing::rows, packing::panels}) {
    d::packed_basis<float> from_narrow, from_wide;
    from_narrow.pack(l, 0, narrow.data(), 70, 9, 70);
    from_wide.pack(l, 0, wide.data(), 70, 9, 70);
    const index_t size = l == packing::rows ? 70 * from_wide.row_stride()
                                           : (70 + d::packed_shape<float>::panel_rows - 1) /
                                                 d::packed_shape<float>::panel_rows *
                                                 d::packed_shape<float>::panel_rows * 9;
    CHECK(std::equal(from_narrow.data(), from_narrow.data() + size, from_wide.data()));
  }
}

TEST_CASE("a pack is reused for the same task and packing until forgotten") {
  t::matrix<float> u = t::random_matrix<float>(40, 3, 7);
  d::packed_basis<float> pack;
  pack.pack(packing::rows, 5, u.data(), 40, 3, 40);
  const float first = pack.data()[0];
  u(0, 0) += 1;
  pack.pack(packing::rows, 5, u.data(), 40, 3, 40);
  CHECK(pack.data()[0] == first);  // same task and packing: the pack stands
  pack.forget();
  pack.pack(packing::rows, 5, u.data(), 40, 3, 40);
  CHECK(pack.data()[0] == u(0, 0));
  pack.pack(packing::panels, 5, u.data(), 40, 3, 40);
  CHECK(pack.directions() == 3);
  pack.pack(packing::rows, 6, u.data(), 40, 3, 40);
  CHECK(pack.row_stride() % d::packed_shape<float>::lanes == 0);
}

TEST_CASE("a non-finite entry of X reaches only its column's coefficients") {
  const t::matrix<float> u = t::random_matrix<float>(50, 20, 8);
  t::matrix<float> values = t::random_matrix<float>(50, 6, 9);
  values(17, 2) = std::numeric_limits<float>::infinity();
  padded_matrix<float> x(values);
  const t::matrix<float> c = coefficients(u, x, d::packed_block_bytes);
  for (index_t j = 0; j < 6; ++j) CHECK(c.col(j).allFinite() == (j != 2));
}
