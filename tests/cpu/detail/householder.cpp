#include <vector>

#include <doctest/doctest.h>

#include <Eigen/QR>

#include <ogpsa/cpu/detail/householder.hpp>

#include "support.hpp"

namespace t = ogpsa::test;
using ogpsa::index_t;
using ogpsa::cpu::detail::column_block;

namespace {

/// The columns of `a` copied into separate matrices of the given widths, as blocks.
template <class T>
struct split_matrix {
  std::vector<t::matrix<T>> parts;
  std::vector<column_block<T>> blocks;

  split_matrix(const t::matrix<T>& a, const std::vector<index_t>& widths) {
    index_t at = 0;
    for (index_t w : widths) {
      parts.push_back(a.middleCols(at, w));
      at += w;
    }
    for (auto& p : parts) blocks.push_back({p.data(), p.rows(), p.cols(), 1, p.rows()});
  }
};

template <class T>
t::matrix<T> q_times(const split_matrix<T>& s, const ogpsa::cpu::detail::householder_factors<T>& f,
                     const t::matrix<T>& x) {
  t::matrix<T> out = t::matrix<T>::Zero(f.rows, x.cols());
  out.topRows(x.rows()) = x;
  ogpsa::cpu::detail::apply_q(std::span<const column_block<T>>(s.blocks), f, out);
  return out;
}

}  // namespace

TEST_CASE_TEMPLATE("householder_qr of matrices side by side: Q R = A, Q orthonormal, R as Eigen's", T, float,
                   double) {
  const double tol = 50 * t::tolerance<T>();
  struct shape {
    index_t rows;
    std::vector<index_t> widths;
  };
  // Panels across and within blocks, single columns, and more columns than rows (wide local data).
  for (const shape& c : {shape{300, {70}}, shape{300, {1, 40, 29}}, shape{200, {33, 1, 1, 64}},
                         shape{20, {7, 30, 13}}, shape{5, {1, 1, 1, 1, 1, 1, 1}}}) {
    CAPTURE(c.rows);
    CAPTURE(c.widths.size());
    index_t cols = 0;
    for (index_t w : c.widths) cols += w;
    const t::matrix<T> a = t::random_matrix<T>(c.rows, cols, 3);
    split_matrix<T> s(a, c.widths);
    const auto f = ogpsa::cpu::detail::householder_qr<T>(std::span<const column_block<T>>(s.blocks));
    const ogpsa::host_matrix r =
        ogpsa::cpu::detail::upper_factor(std::span<const column_block<T>>(s.blocks), f);
    const index_t k = std::min(c.rows, cols);
    REQUIRE(r.rows() == k);
    CHECK(r.isUpperTriangular(0.0));
    const t::matrix<double> q = q_times<T>(s, f, t::matrix<T>::Identity(k, k)).template cast<double>();
    CHECK(t::orthonormality_error(q) < tol);
    CHECK((q * r - a.template cast<double>()).norm() < tol * a.template cast<double>().norm());
    const Eigen::HouseholderQR<t::matrix<double>> eigen(a.template cast<double>());
    const t::matrix<double> expected = eigen.matrixQR().topRows(k).template triangularView<Eigen::Upper>();
    CHECK((r - expected).norm() < tol * expected.norm());  // the same reflectors: the same signs
  }
}

TEST_CASE_TEMPLATE("form_q turns a factored matrix into its Q in place, even when it is rank deficient", T,
                   float, double) {
  for (index_t rank : {40, 3}) {
    CAPTURE(rank);
    const t::matrix<T> a = t::random_matrix<T>(500, rank, 5) * t::random_matrix<T>(rank, 40, 6);
    t::matrix<T> q = a;
    const column_block<T> block{q.data(), q.rows(), q.cols(), 1, q.rows()};
    const auto f = ogpsa::cpu::detail::householder_qr<T>(std::span(&block, 1));
    const ogpsa::host_matrix r = ogpsa::cpu::detail::upper_factor(std::span(&block, 1), f);
    ogpsa::cpu::detail::form_q(block, f);
    const t::matrix<double> qd = q.template cast<double>();
    CHECK(t::orthonormality_error(qd) < 50 * t::tolerance<T>());
    CHECK((qd * r - a.template cast<double>()).norm() <
          50 * t::tolerance<T>() * a.template cast<double>().norm());
  }
}

TEST_CASE("householder_qr gives the same bits whatever Eigen's thread count") {
  // Wide enough that Eigen's own blocked QR would run its trailing products on several threads.
  const t::matrix<float> a = t::random_matrix<float>(4096, 256, 8);
  const auto factor = [&](int threads) {
    Eigen::setNbThreads(threads);
    t::matrix<float> m = a;
    const column_block<float> block{m.data(), m.rows(), m.cols(), 1, m.rows()};
    const auto f = ogpsa::cpu::detail::householder_qr<float>(std::span(&block, 1));
    ogpsa::cpu::detail::form_q(block, f);
    return m;
  };
  const t::matrix<float> one = factor(1), four = factor(4);
  Eigen::setNbThreads(0);
  CHECK(t::same_bits(one, four));
}
