#pragma once
/// \file
/// The CUDA backend: every primitive of `ogpsa/backend.hpp` on device memory, selected at
/// compile time for views tagged `cuda_memory_tag`.
///
/// What runs where:
/// - projection (`project`, `project_all`): on the device. Flat blocks take two fused passes
///   (all k coefficients in one reduction, then the update), matrix-side blocks batched cuBLAS
///   GEMMs; the rule runs in a kernel. See `detail/batched_projection.cuh`.
/// - estimator data (snapshots, sums, bases): on the device; Gram matrices through cuBLAS
///   (fp32 data widened panel by panel and accumulated in fp64; parts side by side gathered
///   panel by panel, so they are read once), products with small host matrices through cuBLAS
///   (in place panel by panel, without a second large matrix; both in `detail/stacked.cuh`), QR
///   in place through cuSOLVER's 64-bit geqrf and larft with Q applied and formed by cuBLAS GEMMs
///   (`detail/householder.cuh`), Gram-Schmidt through cuBLAS dot/nrm2 and small kernels; Gaussian
///   test matrices generated on the host panel by panel and copied in.
/// - small dense algebra (k x k and m x m eigen-decompositions and SVDs): on the host in double,
///   as for every backend; only those small matrices cross the bus.
///
/// Every call is ordered on the execution's stream. Calls that return host values (`gram`,
/// `all_finite`, the QR primitives, `gram_schmidt`'s norms, `to_host`, `project*`'s stats) wait for
/// it; the others return with the work in flight, and so does `project_all` when its caller reads
/// no stats (a projector whose `project()` is given no callback that reads them).

#include <algorithm>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include <cuda_runtime.h>

#include "ogpsa/backend.hpp"
#include "ogpsa/cuda/detail/batched_projection.cuh"
#include "ogpsa/cuda/detail/blas.hpp"
#include "ogpsa/cuda/detail/device_ref.hpp"
#include "ogpsa/cuda/detail/elementwise.cuh"
#include "ogpsa/cuda/detail/householder.cuh"
#include "ogpsa/cuda/detail/stacked.cuh"
#include "ogpsa/cuda/detail/transfer.hpp"
#include "ogpsa/cuda/device_span.hpp"
#include "ogpsa/cuda/error.hpp"
#include "ogpsa/cuda/execution.hpp"
#include "ogpsa/cuda/matrix.hpp"
#include "ogpsa/cuda/workspace.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/detail/random.hpp"
#include "ogpsa/element.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/memory_space.hpp"

namespace ogpsa::cuda {

namespace detail {

template <class T>
device_ref<const T> dense(const device_matrix<T>& m) {
  return {m.data(), m.rows(), m.cols(), 1, m.rows()};
}

/// Zeroes a(i, j) for i > j in the leading rows x cols block (leading dimension ld).
template <class T>
__global__ void zero_below_diagonal_kernel(T* a, index_t rows, index_t cols, index_t ld) {
  for (index_t j = blockIdx.y; j < cols; j += gridDim.y)
    for (index_t i = j + 1 + blockIdx.x * index_t(blockDim.x) + threadIdx.x; i < rows; i += index_t(gridDim.x) * blockDim.x)
      a[j * ld + i] = T(0);
}

template <class T>
device_ref<void> erase(const device_ref<T>& r) {
  return {const_cast<std::remove_const_t<T>*>(r.data), r.rows, r.cols, r.row_stride, r.col_stride};
}

}  // namespace detail

/// The CUDA backend. Matrices are `device_matrix<T>`; estimators compute in float or double.
struct backend {
  using memory_space = cuda_memory_tag;
  using execution = cuda::execution;
  using workspace = cuda::workspace;
  template <class T>
  using matrix = device_matrix<T>;
  template <class T>
  using ref = ogpsa::detail::matrix_ref<T, cuda_memory_tag>;

  template <class T>
  static matrix<T> zeros(execution& exec, index_t rows, index_t cols) {
    matrix<T> m(rows, cols, exec.stream());
    if (m.size() > 0)
      OGPSA_CUDA_CHECK("ogpsa::cuda::backend::zeros", cudaMemsetAsync(m.data(), 0, m.bytes(), exec.stream()));
    return m;
  }

  template <class T, class S>
  static void copy_into(execution& exec, ref<const S> src, matrix<T>& dst, index_t col) {
    check_columns(src, dst, col, "ogpsa::cuda::backend::copy_into");
    detail::convert_into<false>(exec, src, dst.col(col), dst.rows(), "ogpsa::cuda::backend::copy_into");
  }

  template <class T, class S>
  static void add_into(execution& exec, ref<const S> src, matrix<T>& dst, index_t col) {
    check_columns(src, dst, col, "ogpsa::cuda::backend::add_into");
    detail::convert_into<true>(exec, src, dst.col(col), dst.rows(), "ogpsa::cuda::backend::add_into");
  }

  template <class S>
  static bool all_finite(execution& exec, ref<const S> src) {
    return detail::all_finite(exec, src, "ogpsa::cuda::backend::all_finite");
  }

  /// a^T b accumulated in double: float data is widened to double panel by panel and multiplied
  /// by cuBLAS in fp64; exactly symmetric when `a` and `b` are the same matrix (one triangle is
  /// computed and mirrored).
  template <class T>
  static host_matrix gram(execution& exec, const matrix<T>& a, const matrix<T>& b) {
    constexpr const char* where = "ogpsa::cuda::backend::gram";
    OGPSA_REQUIRE(a.rows() == b.rows(), shape_error, where,
                  "the operands have " << a.rows() << " and " << b.rows() << " rows");
    const detail::stacked_operand<T> sa{{}, detail::dense(a)}, sb{{}, detail::dense(b)};
    const detail::gram_with with = &a == &b ? detail::gram_with::itself : detail::gram_with::other;
    return detail::stacked_gram<T>(exec, sa, with, sb, where);
  }

  /// a a^T accumulated in double: the Gram matrix of the rows, for wide data.
  template <class T>
  static host_matrix row_gram(execution& exec, const matrix<T>& a) {
    constexpr const char* where = "ogpsa::cuda::backend::row_gram";
    host_matrix g = host_matrix::Zero(a.rows(), a.rows());
    if (g.size() == 0 || a.cols() == 0) return g;
    matrix<double> out(a.rows(), a.rows(), exec.stream());
    const index_t panel = std::is_same_v<T, double> ? a.cols() : detail::panel_length(a.cols(), a.rows());
    widened_columns<T> widened(exec, panel, a.rows());
    for (index_t c = 0; c < a.cols(); c += panel) {
      const index_t n = std::min(panel, a.cols() - c);
      const double* pa = widened.columns_of(exec, a, c, n);
      detail::syrk<double>(exec, CUBLAS_OP_N, a.rows(), n, 1.0, pa, a.rows(), c == 0 ? 0.0 : 1.0, out.data(),
                           a.rows(), where);
    }
    g = to_host(exec, out);
    g.template triangularView<Eigen::StrictlyUpper>() = g.transpose();
    return g;
  }

  /// [p_1 p_2 ...]^T b accumulated in double, in one pass over the rows: each panel of rows of
  /// the parts is gathered side by side (widened to double) and multiplied once, so a stream of
  /// m single-column snapshots costs one pass, not m.
  template <class T>
  static host_matrix gram(execution& exec, const std::vector<matrix<T>>& parts, const matrix<T>& b) {
    constexpr const char* where = "ogpsa::cuda::backend::gram";
    const index_t rows = detail::common_rows<T>(parts, where);
    OGPSA_REQUIRE(b.rows() == rows, shape_error, where, "the parts have " << rows << " rows, b has " << b.rows());
    return detail::stacked_gram<T>(exec, {parts}, detail::gram_with::other, {std::span(&b, 1)}, where);
  }

  /// [a tail]^T tail accumulated in double, in one pass over the rows: `tail` (column-major, in
  /// device memory) is read where it lies, for example a caller's columns that an estimator does
  /// not keep. Each panel of rows of a and tail is widened side by side and multiplied once.
  template <class T>
  static host_matrix gram_with_tail(execution& exec, const matrix<T>& a, ref<const T> tail) {
    constexpr const char* where = "ogpsa::cuda::backend::gram_with_tail";
    check_tail(a, tail, where);
    return detail::stacked_gram<T>(exec, {std::span(&a, 1), tail}, detail::gram_with::tail, {}, where);
  }

  /// The Gram matrix of [p_1 p_2 ...] accumulated in double, exactly symmetric, in one pass over
  /// the rows (one triangle by syrk per panel, mirrored at the end).
  template <class T>
  static host_matrix gram(execution& exec, const std::vector<matrix<T>>& parts) {
    constexpr const char* where = "ogpsa::cuda::backend::gram";
    detail::common_rows<T>(parts, where);
    return detail::stacked_gram<T>(exec, {parts}, detail::gram_with::itself, {}, where);
  }

  /// |a|_F^2 accumulated in double (float data widened panel by panel; cuBLAS's scaled nrm2 in
  /// fp64, squared on the host).
  template <class T>
  static double squared_norm(execution& exec, const matrix<T>& a) {
    constexpr const char* where = "ogpsa::cuda::backend::squared_norm";
    if (a.size() == 0) return 0.0;
    if constexpr (std::is_same_v<T, double>) {
      const double norm = detail::nrm2<double>(exec, a.size(), a.data(), where);
      return norm * norm;
    } else {
      const index_t panel = detail::panel_length(a.size(), 1);
      matrix<double> wide(panel, 1, exec.stream());
      double sum = 0;
      for (index_t i = 0; i < a.size(); i += panel) {
        const index_t n = std::min(panel, a.size() - i);
        detail::convert_into<false>(exec, ref<const T>{a.data() + i, n, 1, 1, n}, wide.data(), n, where);
        const double norm = detail::nrm2<double>(exec, n, wide.data(), where);
        sum += norm * norm;
      }
      return sum;
    }
  }

  template <class T>
  static matrix<T> multiply(execution& exec, const matrix<T>& a, const host_matrix& x) {
    matrix<T> out = zeros<T>(exec, a.rows(), x.cols());
    multiply_add(exec, a, x, out);
    return out;
  }

  /// out += a x, in T.
  template <class T>
  static void multiply_add(execution& exec, const matrix<T>& a, const host_matrix& x, matrix<T>& out) {
    constexpr const char* where = "ogpsa::cuda::backend::multiply_add";
    OGPSA_REQUIRE(x.rows() == a.cols() && out.rows() == a.rows() && out.cols() == x.cols(), shape_error, where,
                  "cannot add a (" << a.rows() << " x " << a.cols() << ") times x (" << x.rows() << " x "
                                   << x.cols() << ") to out (" << out.rows() << " x " << out.cols() << ")");
    if (out.size() == 0 || a.cols() == 0) return;
    const matrix<T> xt = from_host(exec, Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>(x.template cast<T>()));
    detail::gemm<T>(exec, CUBLAS_OP_N, CUBLAS_OP_N, a.rows(), x.cols(), a.cols(), T(1), a.data(), a.rows(), xt.data(),
                    xt.rows(), T(1), out.data(), out.rows(), where);
  }

  /// [p_1 p_2 ...] x in T (x has one row per column of all parts), in one pass over the rows:
  /// each panel of rows of the parts is gathered side by side and multiplied once.
  template <class T>
  static matrix<T> multiply(execution& exec, const std::vector<matrix<T>>& parts, const host_matrix& x) {
    constexpr const char* where = "ogpsa::cuda::backend::multiply";
    const index_t rows = detail::common_rows<T>(parts, where), cols = detail::total_cols<T>(parts);
    OGPSA_REQUIRE(x.rows() == cols, shape_error, where,
                  "the parts have " << cols << " columns in all, x has " << x.rows() << " rows");
    matrix<T> out = zeros<T>(exec, rows, x.cols());
    detail::stacked_product<T>(exec, {parts}, x, out, where);
    return out;
  }

  /// a <- a x for a square host x (cols(a) x cols(a)), panel by panel: no second matrix of a's
  /// size, only a panel of rows.
  template <class T>
  static void multiply_in_place(execution& exec, matrix<T>& a, const host_matrix& x) {
    constexpr const char* where = "ogpsa::cuda::backend::multiply_in_place";
    OGPSA_REQUIRE(x.rows() == a.cols() && x.cols() == a.cols(), shape_error, where,
                  "x must be " << a.cols() << " x " << a.cols() << ", got " << x.rows() << " x " << x.cols());
    detail::stacked_product<T>(exec, {std::span(&a, 1)}, x, a, where);
  }

  /// parts[0] <- [p_1 p_2 ...] x (x has one row per column of all parts and cols(p_1) columns),
  /// panel by panel; the other parts are only read.
  template <class T>
  static void multiply_in_place(execution& exec, std::vector<matrix<T>>& parts, const host_matrix& x) {
    constexpr const char* where = "ogpsa::cuda::backend::multiply_in_place";
    OGPSA_REQUIRE(!parts.empty(), invalid_argument, where, "got no parts");
    detail::common_rows<T>(parts, where);
    const index_t cols = detail::total_cols<T>(parts);
    OGPSA_REQUIRE(x.rows() == cols && x.cols() == parts.front().cols(), shape_error, where,
                  "x must be " << cols << " x " << parts.front().cols() << ", got " << x.rows() << " x " << x.cols());
    detail::stacked_product<T>(exec, {parts}, x, parts.front(), where);
  }

  /// a <- [a tail] x in place (x has cols(a) + cols(tail) rows and cols(a) columns), panel by
  /// panel; `tail` (column-major, in device memory) is only read, where it lies.
  template <class T>
  static void multiply_in_place(execution& exec, matrix<T>& a, ref<const T> tail, const host_matrix& x) {
    constexpr const char* where = "ogpsa::cuda::backend::multiply_in_place";
    check_tail(a, tail, where);
    OGPSA_REQUIRE(x.rows() == a.cols() + tail.cols && x.cols() == a.cols(), shape_error, where,
                  "x must be " << a.cols() + tail.cols << " x " << a.cols() << ", got " << x.rows() << " x "
                               << x.cols());
    detail::stacked_product<T>(exec, {std::span(&a, 1), tail}, x, a, where);
  }

  template <class T>
  static matrix<T> transpose(execution& exec, const matrix<T>& a) {
    matrix<T> out(a.cols(), a.rows(), exec.stream());
    const ref<const T> t{a.data(), a.cols(), a.rows(), a.rows(), 1};  // a^T as a row-major view
    detail::convert_into<false>(exec, t, out.data(), out.rows(), "ogpsa::cuda::backend::transpose");
    return out;
  }

  template <class T>
  static matrix<T> gather_columns(execution& exec, const matrix<T>& a, const std::vector<index_t>& cols) {
    constexpr const char* where = "ogpsa::cuda::backend::gather_columns";
    matrix<T> out(a.rows(), static_cast<index_t>(cols.size()), exec.stream());
    for (std::size_t j = 0; j < cols.size(); ++j) {
      OGPSA_REQUIRE(cols[j] >= 0 && cols[j] < a.cols(), invalid_argument, where,
                    "column " << cols[j] << " is outside [0, " << a.cols() << ")");
      copy_columns(exec, a.col(cols[j]), out.col(static_cast<index_t>(j)), a.rows(), where);
    }
    return out;
  }

  template <class T>
  static matrix<T> concatenate(execution& exec, const std::vector<matrix<T>>& parts) {
    constexpr const char* where = "ogpsa::cuda::backend::concatenate";
    if (parts.size() == 1) return parts.front();
    const index_t rows = parts.empty() ? 0 : parts.front().rows();
    index_t cols = 0;
    for (const matrix<T>& p : parts) {
      OGPSA_REQUIRE(p.rows() == rows, shape_error, where, "parts have " << rows << " and " << p.rows() << " rows");
      cols += p.cols();
    }
    matrix<T> out(rows, cols, exec.stream());
    index_t at = 0;
    for (const matrix<T>& p : parts) {
      copy_columns(exec, p.data(), out.col(at), p.size(), where);
      at += p.cols();
    }
    return out;
  }

  /// The factors `householder_qr` leaves beside the parts it factored in place: each part's
  /// reflector coefficients (geqrf's tau) and first column, and R on the host.
  template <class T>
  struct qr_factors {
    index_t rows = 0;
    std::vector<index_t> first;  ///< per part, its first column in A
    std::vector<matrix<T>> tau;  ///< per part, min(cols, rows - first) coefficients (none past the last row)
    host_matrix r;               ///< R, min(rows, cols) x cols, upper triangular
  };

  /// Householder QR in place of the parts side by side, A = [p_1 p_2 ...] = Q R (any shape), through
  /// cuSOLVER, one part at a time: the earlier parts' reflectors are applied to it (from their
  /// compact WY form, `detail/householder.cuh`), then its rows below the earlier columns are
  /// factored (geqrf). The parts then hold the reflectors and R's
  /// columns above them, as LAPACK leaves them; nothing of A's size is allocated. R comes back on the
  /// host (waits for the stream).
  template <class T>
  static qr_factors<T> householder_qr(execution& exec, std::vector<matrix<T>>& parts) {
    constexpr const char* where = "ogpsa::cuda::backend::householder_qr";
    qr_factors<T> f;
    f.rows = detail::common_rows<T>(parts, where);
    const index_t rows = f.rows;
    detail::device_buffer info(sizeof(int) * std::max<std::size_t>(1, parts.size()), exec.stream(), where);
    int* status = static_cast<int*>(info.data());
    int calls = 0;
    index_t column = 0;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      matrix<T>& p = parts[i];
      for (std::size_t j = 0; j < i; ++j)
        detail::apply_reflectors<T>(exec, CUBLAS_OP_T, rows - f.first[j], p.cols(), f.tau[j].rows(),
                                    parts[j].data() + f.first[j], rows, f.tau[j].data(), p.data() + f.first[j], rows,
                                    where);
      const index_t count = std::clamp<index_t>(rows - column, 0, p.cols());
      f.first.push_back(column);
      f.tau.emplace_back(count, 1, exec.stream());
      if (count > 0)
        detail::geqrf<T>(exec, rows - column, p.cols(), p.data() + column, rows, f.tau.back().data(), status + calls++,
                         where);
      column += p.cols();
    }
    check_status(exec, status, calls, where);
    f.r = upper_factor(exec, parts, f.first, std::min(f.rows, column), column, where);
    return f;
  }

  /// Q [x; 0] (rows x cols(x)) for parts factored by `householder_qr`; x has min(rows, cols) rows.
  /// \throws shape_error for another number of rows.
  template <class T>
  static matrix<T> apply_q(execution& exec, const std::vector<matrix<T>>& parts, const qr_factors<T>& f,
                           const host_matrix& x) {
    constexpr const char* where = "ogpsa::cuda::backend::apply_q";
    OGPSA_REQUIRE(x.rows() == f.r.rows(), shape_error, where,
                  "x must have " << f.r.rows() << " rows (R's), got " << x.rows());
    matrix<T> out = zeros<T>(exec, f.rows, x.cols());
    if (out.size() == 0) return out;
    const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> top = x.template cast<T>();
    if (top.size() > 0)
      OGPSA_CUDA_CHECK(where, cudaMemcpy2DAsync(out.data(), static_cast<std::size_t>(f.rows) * sizeof(T), top.data(),
                                                static_cast<std::size_t>(top.rows()) * sizeof(T),
                                                static_cast<std::size_t>(top.rows()) * sizeof(T),
                                                static_cast<std::size_t>(top.cols()), cudaMemcpyHostToDevice,
                                                exec.stream()));
    for (std::size_t j = parts.size(); j-- > 0;)  // Q = Q_1 Q_2 ...: the last part's reflectors first
      detail::apply_reflectors<T>(exec, CUBLAS_OP_N, f.rows - f.first[j], x.cols(), f.tau[j].rows(),
                                  parts[j].data() + f.first[j], f.rows, f.tau[j].data(), out.data() + f.first[j],
                                  f.rows, where);
    exec.synchronize();  // keeps `top` alive until the copy is done
    return out;
  }

  /// a <- an orthonormal basis of its range, in place (cuSOLVER geqrf, then Q formed where a was;
  /// completed to a's width when a is rank deficient). a is tall: rows >= cols.
  /// \throws shape_error for a wide a.
  template <class T>
  static void householder_basis(execution& exec, matrix<T>& a) {
    constexpr const char* where = "ogpsa::cuda::backend::householder_basis";
    OGPSA_REQUIRE(a.rows() >= a.cols(), shape_error, where, "needs rows >= cols, got " << a.rows() << " x " << a.cols());
    if (a.cols() == 0) return;
    matrix<T> tau(a.cols(), 1, exec.stream());
    detail::device_buffer info(sizeof(int), exec.stream(), where);
    int* status = static_cast<int*>(info.data());
    detail::geqrf<T>(exec, a.rows(), a.cols(), a.data(), a.rows(), tau.data(), status, where);
    detail::form_q<T>(exec, a.rows(), a.cols(), a.data(), a.rows(), tau.data(), where);
    check_status(exec, status, 1, where);
  }

  /// R (min(rows, cols) x rows, upper triangular, on the host) of A^T = Q R for the parts side by
  /// side, A = [p_1 p_2 ...]; A is only read. A^T is factored a slab of `rows` of its rows at a time
  /// below the R of those before (TSQR), so beside A this needs one (2 rows) x rows device matrix.
  template <class T>
  static host_matrix transposed_r(execution& exec, const std::vector<matrix<T>>& parts) {
    constexpr const char* where = "ogpsa::cuda::backend::transposed_r";
    const index_t d = detail::common_rows<T>(parts, where), slab = std::max<index_t>(d, 1), ld = d + slab;
    matrix<T> stack(ld, d, exec.stream()), tau(d, 1, exec.stream());
    detail::device_buffer info(sizeof(int), exec.stream(), where);
    int* status = static_cast<int*>(info.data());
    index_t held = 0;  // rows of R at the top of the stack
    for (const matrix<T>& p : parts)
      for (index_t c = 0; c < p.cols(); c += slab) {
        const index_t n = std::min(slab, p.cols() - c);
        const ref<const T> rows_of_transpose{p.col(c), n, d, p.rows(), 1};  // columns c.. of p, as rows
        detail::convert_into<false>(exec, rows_of_transpose, stack.data() + held, ld, where);
        if (d > 0) detail::geqrf<T>(exec, held + n, d, stack.data(), ld, tau.data(), status, where);
        held = std::min(held + n, d);
        zero_below_diagonal(exec, stack.data(), held, d, ld, where);
      }
    check_status(exec, status, 1, where);
    const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> top = rows_to_host(exec, stack, held, d, where);
    return top.template cast<double>();
  }

  /// The leading rows x cols block of the seed's standard normal matrix (`ogpsa/detail/random.hpp`):
  /// generated in T on the host a panel of rows at a time (at most 2^20 values), each copied into
  /// place; the same bits as the host backend's.
  template <class T>
  static matrix<T> gaussian(execution& exec, index_t rows, index_t cols, std::uint64_t seed) {
    constexpr const char* where = "ogpsa::cuda::backend::gaussian";
    matrix<T> out(rows, cols, exec.stream());
    if (out.size() == 0) return out;
    const index_t panel = std::clamp<index_t>((index_t{1} << 20) / cols, 1, rows);
    std::vector<T> host(static_cast<std::size_t>(panel * cols));
    for (index_t r = 0; r < rows; r += panel) {
      const index_t n = std::min(panel, rows - r);
      ogpsa::detail::gaussian_panel(seed, r, n, cols, host.data(), n);
      OGPSA_CUDA_CHECK(where, cudaMemcpy2DAsync(out.data() + r, static_cast<std::size_t>(rows) * sizeof(T), host.data(),
                                                static_cast<std::size_t>(n) * sizeof(T),
                                                static_cast<std::size_t>(n) * sizeof(T), static_cast<std::size_t>(cols),
                                                cudaMemcpyHostToDevice, exec.stream()));
      exec.synchronize();  // the panel is refilled next
    }
    return out;
  }

  /// Modified Gram-Schmidt with one re-orthogonalization pass, in place, with the host
  /// backend's semantics: column j becomes w / (|w| + eps), where w is column j minus its
  /// components along the kept columns before it; when |w| + eps < drop, the column is zeroed
  /// and reported dropped. Returns |w| per column (negative for dropped ones). Dot products run
  /// in T through cuBLAS and stay on the device; each column's norm comes back to decide.
  template <class T>
  static std::vector<double> gram_schmidt(execution& exec, matrix<T>& q, double eps, double drop) {
    constexpr const char* where = "ogpsa::cuda::backend::gram_schmidt";
    std::vector<double> norms(static_cast<std::size_t>(q.cols()), -1.0);
    auto* dot = static_cast<T*>(exec.device_scratch());
    const index_t n = q.rows();
    const unsigned blocks = detail::grid_blocks(n);
    for (index_t j = 0; j < q.cols(); ++j) {
      for (int pass = 0; pass < 2; ++pass)
        for (index_t i = 0; i < j; ++i) {
          if (norms[static_cast<std::size_t>(i)] < 0) continue;
          detail::dot<T>(exec, n, q.col(i), q.col(j), dot, where);
          detail::subtract_scaled_kernel<<<blocks, detail::block_threads, 0, exec.stream()>>>(q.col(j), q.col(i), dot, n);
          detail::check_launch(where, "ogpsa's Gram-Schmidt update kernel");
        }
      const double norm = static_cast<double>(detail::nrm2<T>(exec, n, q.col(j), where));
      if (!(norm + eps >= drop)) {
        OGPSA_CUDA_CHECK(where, cudaMemsetAsync(q.col(j), 0, static_cast<std::size_t>(n) * sizeof(T), exec.stream()));
        continue;
      }
      detail::divide_kernel<<<blocks, detail::block_threads, 0, exec.stream()>>>(q.col(j), n, static_cast<T>(norm + eps));
      detail::check_launch(where, "ogpsa's Gram-Schmidt scaling kernel");
      norms[static_cast<std::size_t>(j)] = norm;
    }
    return norms;
  }

  template <class To, class From>
  static matrix<To> convert(execution& exec, const matrix<From>& m) {
    matrix<To> out(m.rows(), m.cols(), exec.stream());
    detail::convert_into<false>(exec, detail::dense(m), out.data(), out.rows(), "ogpsa::cuda::backend::convert");
    return out;
  }

  template <class T>
  static Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> to_host(execution& exec, const matrix<T>& m) {
    return detail::to_host(exec, m);
  }

  template <class T>
  static matrix<T> from_host(execution& exec, const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>& h) {
    return detail::from_host(exec, h);
  }

  /// Projects every column of `target` in place: c = U^T x, then x <- s x - U r where the rule
  /// turns c into (r, s), column by column (see `project_all`).
  template <class Basis, class G, class Rule>
  static void project(execution& exec, const matrix<Basis>& basis, ref<G> target, const Rule& rule, workspace& ws,
                      projection_stats& stats, bool diagnostics) {
    constexpr const char* where = "ogpsa::cuda::backend::project";
    projection_task<matrix<Basis>, ref<G>> task{&basis, target, {}};
    const std::span<projection_task<matrix<Basis>, ref<G>>> one(&task, 1);
    coefficients(exec, one, ws, diagnostics, where);
    update(exec, one, rule, ws, diagnostics, where);
    stats = task.stats;
  }

  /// Projects every task's target with its basis in a constant number of launches and fills each
  /// task's stats: `finite` and `changed` unless `flags_report::unread`, the squared norms and
  /// scale with `diagnostics` (the numbers after the update measured by the coefficient pass run
  /// once more over what was written, and the call then waits for them). Flat blocks accumulate
  /// in `accumulator_t<G, Basis>`; matrix-side blocks run as cuBLAS GEMMs in the gradient's type
  /// with fp32 accumulation (bf16/fp16 on the tensor cores, with operands the gradient type
  /// cannot hold exactly split into two parts; fp32 on the tensor cores only with
  /// `matrix_math::tf32`). A block whose rule removes nothing, or whose coefficients are not
  /// finite, is not changed. `coefficients_all` then `update_all`.
  ///
  /// Reading the flags (or diagnostics) makes the host wait for everything queued before the
  /// call. With `flags_report::unread` and no diagnostics it returns with the work in flight
  /// (see `detail/batched_projection.cuh` for how, and for the one thing it changes: matrix-side
  /// blocks that are not changed are rewritten with their own values, so -0 may read +0 there and a
  /// NaN's payload is not kept).
  /// \throws shape_error when a basis and its target disagree on rows, invalid_argument for a
  ///         rule that scales gradients on matrix-side blocks or for matrix-side blocks with a
  ///         double basis and narrower gradients (cuBLAS cannot accumulate those in double).
  template <class Basis, class G, class Rule>
  static void project_all(execution& exec, std::span<projection_task<matrix<Basis>, ref<G>>> tasks,
                          const Rule& rule, workspace& ws, bool diagnostics, flags_report flags = flags_report::read) {
    constexpr const char* where = "ogpsa::cuda::backend::project_all";
    coefficients(exec, tasks, ws, diagnostics, where);
    update(exec, tasks, rule, ws, diagnostics, where, flags);
  }

  /// Phase one of `project_all`: every task's coefficients c = U^T x (k per target column) into
  /// `ws.packed_coefficients<Acc>()`, in task order (zero for empty targets), followed with
  /// diagnostics by each task's |x|^2; Acc = accumulator_t<G, Basis>. Returns with the work in
  /// flight on the stream, so that an all-reduce of that buffer (sharded blocks) can follow.
  template <class Basis, class G>
  static void coefficients_all(execution& exec, std::span<projection_task<matrix<Basis>, ref<G>>> tasks, workspace& ws,
                               bool diagnostics) {
    coefficients(exec, tasks, ws, diagnostics, "ogpsa::cuda::backend::coefficients_all");
  }

  /// Phase two of `project_all`, on the same tasks and workspace: applies the rule to the
  /// (possibly all-reduced) packed coefficients, writes x <- s x - U r, and fills the stats.
  /// \throws state_error when it does not follow `coefficients_all` on the same tasks.
  template <class Basis, class G, class Rule>
  static void update_all(execution& exec, std::span<projection_task<matrix<Basis>, ref<G>>> tasks, const Rule& rule,
                         workspace& ws, bool diagnostics) {
    update(exec, tasks, rule, ws, diagnostics, "ogpsa::cuda::backend::update_all");
  }

 private:
  template <class Basis, class G>
  static void coefficients(execution& exec, std::span<projection_task<matrix<Basis>, ref<G>>> tasks, workspace& ws,
                           bool diagnostics, const char* where) {
    ws.tasks.clear();
    for (auto& task : tasks) {
      OGPSA_REQUIRE(task.basis != nullptr, invalid_argument, where, "a task has no basis");
      task.stats = projection_stats{};
      ws.tasks.push_back(detail::block_task{task.basis->data(), task.basis->rows(), task.basis->cols(),
                                            detail::erase(task.target)});
    }
    detail::coefficients_blocks<std::remove_const_t<G>, Basis>(exec, ws, diagnostics, where);
  }

  template <class Basis, class G, class Rule>
  static void update(execution& exec, std::span<projection_task<matrix<Basis>, ref<G>>> tasks, const Rule& rule,
                     workspace& ws, bool diagnostics, const char* where, flags_report flags = flags_report::read) {
    OGPSA_REQUIRE(tasks.size() == ws.tasks.size(), state_error, where,
                  "update_all() got " << tasks.size() << " tasks, coefficients_all() " << ws.tasks.size());
    const bool wait = diagnostics || flags == flags_report::read;
    const std::byte* results =
        detail::update_blocks<std::remove_const_t<G>, Basis>(exec, ws, rule, diagnostics, wait, where);
    if (results == nullptr) return;
    const detail::projection_plan& plan = ws.plan;
    const auto* records = reinterpret_cast<const detail::projection_record*>(results);
    const auto* slot_flags =
        reinterpret_cast<const std::uint8_t*>(results + (plan.offsets().flags - plan.result_offset()));
    for (std::size_t s = 0; s < plan.slots(); ++s) {
      projection_stats& stats = tasks[plan.task_of(s)].stats;
      stats.finite = (slot_flags[s] & detail::flag_finite) != 0;
      stats.changed = (slot_flags[s] & detail::flag_changed) != 0;
      if (!diagnostics) continue;
      const detail::projection_record& r = records[s];
      stats.gradient_sq = r.gradient_sq;
      stats.coefficient_sq = r.coefficient_sq;
      stats.removed_sq = r.removed_sq;
      stats.projected_sq = r.projected_sq;
      stats.remaining_coefficient_sq = r.remaining_coefficient_sq;
      stats.scale = r.scale;
    }
  }

  template <class T>
  static void check_tail(const matrix<T>& a, const ref<const T>& tail, const char* where) {
    OGPSA_REQUIRE(tail.rows == a.rows(), shape_error, where,
                  "the matrix has " << a.rows() << " rows, the tail " << tail.rows);
    OGPSA_REQUIRE(tail.column_major(), layout_error, where,
                  "the tail must be column-major (row stride 1), got row stride " << tail.row_stride);
  }

  template <class T, class S>
  static void check_columns(const ref<const S>& src, const matrix<T>& dst, index_t col, const char* where) {
    OGPSA_REQUIRE(src.rows == dst.rows() && col >= 0 && col + src.cols <= dst.cols(), shape_error, where,
                  "cannot place " << src.rows << " x " << src.cols << " at column " << col << " of a "
                                  << dst.rows() << " x " << dst.cols() << " matrix");
  }

  template <class T>
  static void copy_columns(execution& exec, const T* from, T* to, index_t count, const char* where) {
    if (count > 0)
      OGPSA_CUDA_CHECK(where, cudaMemcpyAsync(to, from, static_cast<std::size_t>(count) * sizeof(T),
                                              cudaMemcpyDeviceToDevice, exec.stream()));
  }

  /// Waits for the stream and checks the info values of `count` cuSOLVER calls.
  static void check_status(execution& exec, const int* status, int count, const char* where) {
    std::vector<int> seen(static_cast<std::size_t>(std::max(count, 1)), 0);
    if (count > 0)
      OGPSA_CUDA_CHECK(where, cudaMemcpyAsync(seen.data(), status, sizeof(int) * static_cast<std::size_t>(count),
                                              cudaMemcpyDeviceToHost, exec.stream()));
    exec.synchronize();
    for (int i = 0; i < count; ++i)
      OGPSA_REQUIRE(seen[static_cast<std::size_t>(i)] == 0, backend_error, where,
                    "cuSOLVER call " << i << " reported info " << seen[static_cast<std::size_t>(i)]);
  }

  /// The leading rows x cols block of a, on the host.
  template <class T>
  static Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> rows_to_host(execution& exec, const matrix<T>& a, index_t rows,
                                                                       index_t cols, const char* where) {
    Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> h(rows, cols);
    if (h.size() > 0)
      OGPSA_CUDA_CHECK(where, cudaMemcpy2DAsync(h.data(), static_cast<std::size_t>(rows) * sizeof(T), a.data(),
                                                static_cast<std::size_t>(a.rows()) * sizeof(T),
                                                static_cast<std::size_t>(rows) * sizeof(T),
                                                static_cast<std::size_t>(cols), cudaMemcpyDeviceToHost, exec.stream()));
    exec.synchronize();
    return h;
  }

  /// R of factored parts: column c of A holds R's column c in its first min(c + 1, rows) rows.
  template <class T>
  static host_matrix upper_factor(execution& exec, const std::vector<matrix<T>>& parts, const std::vector<index_t>& first,
                                  index_t rows, index_t cols, const char* where) {
    host_matrix r = host_matrix::Zero(rows, cols);
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const index_t top = std::min(first[i] + parts[i].cols(), rows);
      r.middleCols(first[i], parts[i].cols()).topRows(top) =
          rows_to_host(exec, parts[i], top, parts[i].cols(), where).template cast<double>();
    }
    return r.template triangularView<Eigen::Upper>();
  }

  /// Zeroes the strictly lower part of the leading rows x cols block of a (leading dimension ld).
  template <class T>
  static void zero_below_diagonal(execution& exec, T* a, index_t rows, index_t cols, index_t ld, const char* where) {
    if (rows == 0 || cols == 0) return;
    detail::zero_below_diagonal_kernel<<<detail::grid_2d(rows, cols), detail::block_threads, 0, exec.stream()>>>(
        a, rows, cols, ld);
    detail::check_launch(where, "ogpsa's triangle kernel");
  }

  /// A double copy of a panel of columns of float data (none for double data: it is used in place).
  template <class T>
  class widened_columns {
   public:
    widened_columns(execution& exec, index_t length, index_t rows) {
      if constexpr (!std::is_same_v<T, double>) a_ = matrix<double>(length, rows, exec.stream());
    }

    /// Columns [c, c + n) of m, widened (leading dimension rows).
    const double* columns_of(execution& exec, const matrix<T>& m, index_t c, index_t n) {
      if constexpr (std::is_same_v<T, double>) {
        return m.col(c);
      } else {
        const ref<const T> cols{m.col(c), m.rows(), n, 1, m.rows()};
        detail::convert_into<false>(exec, cols, a_.data(), m.rows(), "ogpsa::cuda::backend::row_gram");
        return a_.data();
      }
    }

   private:
    matrix<double> a_;
  };
};

}  // namespace ogpsa::cuda

template <>
struct ogpsa::backend_for<ogpsa::cuda_memory_tag> {
  using type = ogpsa::cuda::backend;
};
