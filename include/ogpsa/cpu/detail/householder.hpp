#pragma once
/// \file
/// Householder QR in place, on the calling thread: of one matrix or of several seen side by side
/// (an estimator's snapshots, never copied into one), with Q applied to a few columns or formed in
/// place, and no factor ever the size of the data beside it.
///
/// Left-looking and blocked: the columns are cut into panels of at most `householder_panel` columns
/// (a panel never spans two matrices); each panel first takes every earlier panel's reflectors as
/// one block reflector I - V T V^T (two products with the serial GEMM of `gemm.hpp`), then is
/// factored by Eigen's unblocked Householder QR (matrix-vector products only). Eigen's own blocked
/// QR and its HouseholderSequence would call Eigen's product API, which may split a product across
/// threads and change its rounding with their number; this code does not, so its results are the
/// same bits whatever `execution::threads` says.

#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

#include <Eigen/Core>
#include <Eigen/Householder>
#include <Eigen/QR>

#include "ogpsa/backend.hpp"
#include "ogpsa/cpu/detail/eigen_map.hpp"
#include "ogpsa/cpu/detail/gemm.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/memory_space.hpp"

namespace ogpsa::cpu::detail {

/// Columns per panel.
inline constexpr index_t householder_panel = 32;

/// A column-major matrix in host memory (row stride 1), factored in place or read.
template <class E>
using column_block = ogpsa::detail::matrix_ref<E, host_memory_tag>;

template <class E>
map_of<dense<E>, E> map_block(const column_block<E>& b) {
  return {b.data, b.rows, b.cols, Eigen::OuterStride<>(std::max<index_t>(b.col_stride, 1))};
}

/// One panel of a factored matrix: columns [column, column + width) of the whole, which are columns
/// [offset, offset + width) of matrix `block`. Its reflectors H_column, ..., H_{column + count - 1}
/// (count = t.rows() = min(width, rows - column), none past the last row) are stored below R's
/// diagonal, as LAPACK's geqrf leaves them, and H_column ... H_{column + count - 1} = I - V t V^T.
template <class T>
struct reflector_panel {
  std::size_t block = 0;
  index_t offset = 0;
  index_t column = 0;
  index_t width = 0;
  dense<T> t;
};

/// A QR factorization held in place: rows x cols, Q = H_0 H_1 ... H_{min(rows, cols) - 1}.
template <class T>
struct householder_factors {
  index_t rows = 0;
  index_t cols = 0;
  std::vector<reflector_panel<T>> panels;
};

/// The panel's reflectors V ((rows - column) x count, unit lower trapezoidal; the strictly upper
/// part holds R and is not read).
template <class T, class E>
map_of<dense<T>, const T> reflectors(std::span<const column_block<E>> blocks, index_t rows,
                                     const reflector_panel<T>& p) {
  const column_block<E>& b = blocks[p.block];
  return {b.data + p.offset * b.col_stride + p.column, rows - p.column, p.t.rows(),
          Eigen::OuterStride<>(b.col_stride)};
}

/// c <- (I - V t V^T) c, or (I - V t^T V^T) c when `transpose`; c has V's rows.
template <class T, class Vectors, class Target>
void apply_panel(const Vectors& v, const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>& t, Target&& c,
                 bool transpose) {
  const index_t w = t.rows(), below = v.rows() - w, n = c.cols();
  if (w == 0 || n == 0) return;
  const dense<T> top = v.topRows(w).template triangularView<Eigen::UnitLower>();
  dense<T> x = dense<T>::Zero(w, n), y = dense<T>::Zero(w, n);
  gemm_serial(top.transpose(), c.topRows(w), x, T(1));
  gemm_serial(v.bottomRows(below).transpose(), c.bottomRows(below), x, T(1));
  if (transpose)
    gemm_serial(t.transpose(), x, y, T(1));
  else
    gemm_serial(t, x, y, T(1));
  gemm_serial(top, y, c.topRows(w), T(-1));
  gemm_serial(v.bottomRows(below), y, c.bottomRows(below), T(-1));
}

/// Factors A = [b_1 b_2 ...] (blocks of equal height, side by side) = Q R in place: each column j
/// then holds R's column j in its first min(j + 1, rows) rows and reflector j's essential part below.
template <class T>
householder_factors<T> householder_qr(std::span<const column_block<T>> blocks) {
  householder_factors<T> f;
  f.rows = blocks.empty() ? 0 : blocks.front().rows;
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    auto a = map_block(blocks[b]);
    for (index_t offset = 0; offset < a.cols(); offset += householder_panel) {
      const index_t width = std::min(householder_panel, a.cols() - offset), column = f.cols;
      auto panel = a.middleCols(offset, width);
      for (const reflector_panel<T>& q : f.panels)
        apply_panel(reflectors(blocks, f.rows, q), q.t, panel.bottomRows(f.rows - q.column), true);
      const index_t count = std::clamp<index_t>(f.rows - column, 0, width);
      reflector_panel<T> p{b, offset, column, width, dense<T>::Zero(count, count)};
      if (count > 0) {
        auto lower = panel.bottomRows(f.rows - column);
        Eigen::Matrix<T, Eigen::Dynamic, 1> tau(count);
        Eigen::internal::householder_qr_inplace_unblocked(lower, tau);
        Eigen::internal::make_block_householder_triangular_factor(p.t, lower.leftCols(count), tau);
      }
      f.panels.push_back(std::move(p));
      f.cols += width;
    }
  }
  return f;
}

/// R (min(rows, cols) x cols, upper triangular) of the factored blocks, in double.
template <class T, class E>
host_matrix upper_factor(std::span<const column_block<E>> blocks, const householder_factors<T>& f) {
  host_matrix r = host_matrix::Zero(std::min(f.rows, f.cols), f.cols);
  for (const reflector_panel<T>& p : f.panels) {
    const column_block<E>& b = blocks[p.block];
    for (index_t j = 0; j < p.width; ++j) {
      const index_t c = p.column + j, n = std::min(c + 1, f.rows);
      const E* from = b.data + (p.offset + j) * b.col_stride;
      for (index_t i = 0; i < n; ++i) r(i, c) = static_cast<double>(from[i]);
    }
  }
  return r;
}

/// out <- Q out for the factored blocks (out has their rows).
template <class T, class E, class Out>
void apply_q(std::span<const column_block<E>> blocks, const householder_factors<T>& f, Out&& out) {
  for (auto p = f.panels.rbegin(); p != f.panels.rend(); ++p)
    if (p->t.rows() > 0)
      apply_panel(reflectors(blocks, f.rows, *p), p->t, out.bottomRows(f.rows - p->column), false);
}

/// a <- its first cols columns of Q, in place, after `householder_qr` of a alone (rows >= cols): an
/// orthonormal basis of a's range, completed to a's width when a is rank deficient (LAPACK's orgqr).
template <class T>
void form_q(const column_block<T>& block, const householder_factors<T>& f) {
  auto a = map_block(block);
  const index_t rows = a.rows(), cols = a.cols();
  Eigen::Matrix<T, Eigen::Dynamic, 1> work(std::max<index_t>(cols, 1));
  for (auto p = f.panels.rbegin(); p != f.panels.rend(); ++p) {
    const index_t c = p->column, w = p->width;
    auto v = a.block(c, c, rows - c, w);
    if (c + w < cols) apply_panel(v, p->t, a.block(c, c + w, rows - c, cols - c - w), false);
    for (index_t j = w - 1; j >= 0; --j) {  // the panel's own columns, last reflector first
      const T tau = p->t(j, j);
      const index_t below = rows - c - j - 1;
      if (j + 1 < w)
        v.block(j, j + 1, below + 1, w - j - 1)
            .applyHouseholderOnTheLeft(v.col(j).tail(below), tau, work.data());
      v.col(j).tail(below) *= -tau;
      v(j, j) = T(1) - tau;
      v.col(j).head(j).setZero();
    }
    a.block(0, c, c, w).setZero();
  }
}

}  // namespace ogpsa::cpu::detail

/// The double-precision instances that factor small host matrices (`detail::host_qr`): declared
/// `extern template` under `OGPSA_EXTERN_TEMPLATES`, instantiated by `<ogpsa/instantiate.hpp>`
/// (see `ogpsa/detail/dense.hpp`).
#define OGPSA_DETAIL_HOUSEHOLDER_INSTANTIATIONS(Prefix)                                                      \
  Prefix ogpsa::cpu::detail::householder_factors<double> ogpsa::cpu::detail::householder_qr<double>(        \
      std::span<const ogpsa::cpu::detail::column_block<double>>);                                            \
  Prefix ogpsa::host_matrix ogpsa::cpu::detail::upper_factor<double, double>(                               \
      std::span<const ogpsa::cpu::detail::column_block<double>>,                                             \
      const ogpsa::cpu::detail::householder_factors<double>&);                                               \
  Prefix void ogpsa::cpu::detail::form_q<double>(const ogpsa::cpu::detail::column_block<double>&,            \
                                                 const ogpsa::cpu::detail::householder_factors<double>&);

#ifdef OGPSA_EXTERN_TEMPLATES
OGPSA_DETAIL_HOUSEHOLDER_INSTANTIATIONS(extern template)
#endif
