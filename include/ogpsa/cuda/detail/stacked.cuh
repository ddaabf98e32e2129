#pragma once
/// \file
/// Products over device matrices seen side by side ("stacked" columns), one pass over their rows a
/// panel at a time: the estimators' Gram matrices [p_1 p_2 ...]^T b, accumulated in double, and
/// products [p_1 p_2 ...] x on tall data. The CUDA counterpart of `ogpsa/cpu/detail/stacked.hpp`.
///
/// Each panel of rows of the parts is gathered side by side into one column-major block (converted
/// to double for a Gram matrix) and multiplied once by cuBLAS, so a stream of m single-column
/// snapshots costs one pass, not m. A Gram matrix sums its panels' products in order, in fp64 on
/// the device (beta = 1 after the first panel); a product's panels are independent.

#include <algorithm>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include <cuda_runtime.h>

#include "ogpsa/backend.hpp"
#include "ogpsa/config.hpp"
#include "ogpsa/cuda/detail/blas.hpp"
#include "ogpsa/cuda/detail/device_ref.hpp"
#include "ogpsa/cuda/detail/elementwise.cuh"
#include "ogpsa/cuda/detail/stacked_sources.hpp"
#include "ogpsa/cuda/detail/transfer.hpp"
#include "ogpsa/cuda/error.hpp"
#include "ogpsa/cuda/execution.hpp"
#include "ogpsa/cuda/matrix.hpp"
#include "ogpsa/error.hpp"

namespace ogpsa::cuda::detail {

/// Rows (or columns) per panel when float data is widened to double for a Gram matrix:
/// panels of at most 128 MiB of doubles (2^24 elements: 262,144 rows of 64 snapshot columns, so a
/// 4M-row block takes 16 panels where 32 MiB panels took 64). Each panel costs a few launches, so
/// smaller panels make the helpers launch-bound on tall blocks. The panels come from ogpsa's pool
/// (`detail::library_pool`), which keeps them for the next call.
inline index_t panel_length(index_t total, index_t width) {
  constexpr index_t budget = index_t{1} << 24;
  return std::clamp<index_t>(budget / std::max<index_t>(width, 1), 1, std::max<index_t>(total, 1));
}

/// The parts' common row count. \throws shape_error when they differ.
template <class T>
index_t common_rows(std::span<const device_matrix<T>> parts, const char* where) {
  const index_t rows = parts.empty() ? 0 : parts.front().rows();
  for (const device_matrix<T>& p : parts)
    OGPSA_REQUIRE(p.rows() == rows, shape_error, where,
                  "parts have " << rows << " and " << p.rows() << " rows");
  return rows;
}

template <class T>
index_t total_cols(std::span<const device_matrix<T>> parts) {
  index_t cols = 0;
  for (const device_matrix<T>& p : parts) cols += p.cols();
  return cols;
}

/// Columns seen side by side: the parts, then `tail`, column-major columns read where they lie (a
/// caller's columns, or a matrix on its own). The parts and the tail have the same rows.
template <class T>
struct stacked_operand {
  std::span<const device_matrix<T>> parts;
  device_ref<const T> tail{};

  index_t rows() const { return parts.empty() ? tail.rows : parts.front().rows(); }
  index_t cols() const { return total_cols<T>(parts) + tail.cols; }
};

/// Rows [r, r + n) of `a` side by side, converted to W, into the column-major n x a.cols() panel at
/// `out` (leading dimension n): one launch per `stack_parts` parts, and one for the tail.
template <class W, class T>
void gather_rows(execution& exec, const stacked_operand<T>& a, index_t r, index_t n, W* out,
                 const char* where) {
  std::vector<column_source<T>> sources;
  sources.reserve(a.parts.size());
  for (const device_matrix<T>& p : a.parts)
    sources.push_back({p.cols() > 0 ? p.data() + r : nullptr, p.cols(), p.rows()});
  stack_columns<W, T>(exec, std::span<const column_source<T>>(sources), n, out, n, where);
  if (a.tail.cols == 0) return;  // an empty tail may have no data at all
  const device_ref<const T> rows{a.tail.data + r, n, a.tail.cols, 1, a.tail.col_stride};
  convert_into<false>(exec, rows, out + total_cols<T>(a.parts) * n, n, where);
}

/// What a stacked Gram matrix a^T b takes for b.
enum class gram_with {
  itself,  ///< b = a: one triangle per panel (syrk), mirrored at the end, so exactly symmetric
  other,   ///< b = the `other` operand, gathered into a panel of its own
  tail,    ///< b = a's tail, read from a's panel (gathered once)
};

/// a^T b accumulated in double, in one pass over the rows, as a host matrix (waits for the stream);
/// b as `with` says (`other` is read only for `gram_with::other`). Double data that is one matrix
/// per operand (a tail and no parts) is multiplied where it lies, in one product; otherwise each
/// panel of rows (`panel_length`) of the operands is gathered, widened to double.
template <class T>
host_matrix stacked_gram(execution& exec, const stacked_operand<T>& a, gram_with with,
                         const stacked_operand<T>& other, const char* where) {
  const bool self = with == gram_with::itself, gathered = with == gram_with::other;
  const index_t rows = a.rows(), cols = a.cols();
  const index_t b_cols = self ? cols : gathered ? other.cols() : a.tail.cols;
  host_matrix g = host_matrix::Zero(cols, b_cols);
  if (g.size() == 0 || rows == 0) return g;
  device_matrix<double> out(cols, b_cols, exec.stream());
  const bool in_place =
      std::is_same_v<T, double> && a.parts.empty() && (self || (gathered && other.parts.empty()));
  const index_t panel = in_place ? rows : panel_length(rows, cols + (gathered ? b_cols : 0));
  device_matrix<double> a_panel, b_panel;
  if (!in_place) {
    a_panel = device_matrix<double>(panel, cols, exec.stream());
    if (gathered) b_panel = device_matrix<double>(panel, b_cols, exec.stream());
  }
  // Rows [r, r + n) of an operand in double, column-major: where they lie (in place: every row), or
  // gathered into `buffer`; with their leading dimension.
  const auto rows_of = [&](const stacked_operand<T>& s, device_matrix<double>& buffer, index_t r,
                           index_t n) -> std::pair<const double*, index_t> {
    if constexpr (std::is_same_v<T, double>)
      if (in_place) return {s.tail.data + r, s.tail.col_stride};
    gather_rows<double, T>(exec, s, r, n, buffer.data(), where);
    return {buffer.data(), n};
  };
  for (index_t r = 0; r < rows; r += panel) {
    const index_t n = std::min(panel, rows - r);
    const auto [pa, lda] = rows_of(a, a_panel, r, n);
    const double beta = r == 0 ? 0.0 : 1.0;
    if (self) {
      syrk<double>(exec, CUBLAS_OP_T, cols, n, 1.0, pa, lda, beta, out.data(), cols, where);
      continue;
    }
    const auto [pb, ldb] = gathered ? rows_of(other, b_panel, r, n)
                                    : std::pair<const double*, index_t>{pa + (cols - b_cols) * lda, lda};
    gemm<double>(exec, CUBLAS_OP_T, CUBLAS_OP_N, cols, b_cols, n, 1.0, pa, lda, pb, ldb, beta, out.data(),
                 cols, where);
  }
  g = to_host(exec, out);
  if (self) g.template triangularView<Eigen::StrictlyUpper>() = g.transpose();
  return g;
}

/// out <- a x in T (x has one row per column of a), panel by panel: each panel of rows of a is
/// gathered first, so `out` may be one of its parts (the in-place products).
template <class T>
void stacked_product(execution& exec, const stacked_operand<T>& a, const host_matrix& x,
                     device_matrix<T>& out, const char* where) {
  const index_t rows = out.rows(), cols = a.cols();
  if (rows == 0 || out.cols() == 0) return;
  if (cols == 0) {
    OGPSA_CUDA_CHECK(where, cudaMemsetAsync(out.data(), 0, out.bytes(), exec.stream()));
    return;
  }
  const device_matrix<T> xt =
      from_host(exec, Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>(x.template cast<T>()));
  const index_t panel = panel_length(rows, cols);
  device_matrix<T> gathered(panel, cols, exec.stream());
  for (index_t r = 0; r < rows; r += panel) {
    const index_t n = std::min(panel, rows - r);
    gather_rows<T, T>(exec, a, r, n, gathered.data(), where);
    gemm<T>(exec, CUBLAS_OP_N, CUBLAS_OP_N, n, out.cols(), cols, T(1), gathered.data(), n, xt.data(), cols,
            T(0), out.data() + r, rows, where);
  }
}

}  // namespace ogpsa::cuda::detail
