#pragma once
/// \file
/// The host backend: Eigen for every primitive listed in `ogpsa/backend.hpp`, and ogpsa's own
/// kernels for projection (`ogpsa/cpu/detail/projection.hpp`).
///
/// Threads: projections and the estimators' products over tall data (`ogpsa/cpu/detail/stacked.hpp`)
/// split their work across an OpenMP team of `execution::threads` threads (OpenMP's default when
/// 0), see `ogpsa/cpu/execution.hpp`; results do not depend on the number of threads.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "ogpsa/backend.hpp"
#include "ogpsa/cpu/detail/eigen_map.hpp"
#include "ogpsa/cpu/detail/householder.hpp"
#include "ogpsa/cpu/detail/projection.hpp"
#include "ogpsa/cpu/detail/stacked.hpp"
#include "ogpsa/cpu/execution.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/detail/random.hpp"
#include "ogpsa/element.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/memory_space.hpp"

namespace ogpsa::cpu {

namespace detail {

/// Rows (or columns) per panel when a float product is accumulated in double: small enough to stay in cache.
inline constexpr index_t gram_panel = 2048;

/// Rows per call of an element-wise operation split across threads: at least 64 Ki rows each.
inline constexpr index_t elementwise_rows = index_t{1} << 16;

/// Runs `body(row, n)` over rows [0, rows) in runs of at least `elementwise_rows`, across the team.
template <class Body>
void for_row_runs(int threads, index_t rows, Body&& body) {
  const row_chunks runs(rows, elementwise_rows, threads);
  for_each_chunk(threads, runs.count,
                 [&](index_t c) { body(runs.begin(c), runs.begin(c + 1) - runs.begin(c)); });
}

template <class T>
std::vector<columns_ref<T>> with_tail(const dense<T>& a, const columns_ref<T>& tail) {
  return {columns_of<T>(a), tail};
}

}  // namespace detail

/// The Eigen backend.
struct backend {
  using memory_space = host_memory_tag;
  using execution = cpu::execution;
  template <class T>
  using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  template <class T>
  using ref = ogpsa::detail::matrix_ref<T, host_memory_tag>;

  /// Reusable buffers for the projection primitives, so that a warm projection allocates nothing.
  struct workspace {
    detail::projection_workspace<float> single;
    detail::projection_workspace<double> double_precision;
    template <class Acc>
    detail::projection_workspace<Acc>& get() {
      if constexpr (std::is_same_v<Acc, float>) return single;
      else return double_precision;
    }
    /// The coefficients `coefficients_all` packed: for every task in order its k x n block
    /// (column-major; zeros for an empty target or basis), then, with diagnostics, one |x|^2 per
    /// task. Acc is the tasks' accumulator type.
    template <class Acc>
    std::span<Acc> packed_coefficients() {
      return get<Acc>().coefficients;
    }
    /// The measures `update_all` packed with diagnostics: for every task in order U^T x_after
    /// (k x n, column-major; zeros for a task it did not write), then one |x_after|^2 per task.
    /// A distributed run sums them across ranks, then calls `measure_all`.
    template <class Acc>
    std::span<Acc> packed_measurements() {
      return get<Acc>().measurements;
    }
  };

  template <class T>
  static matrix<T> zeros(execution&, index_t rows, index_t cols) {
    return matrix<T>::Zero(rows, cols);
  }

  /// The leading rows x cols block of the seed's standard normal matrix (`ogpsa/detail/random.hpp`),
  /// generated in T a run of rows at a time across the team: the same bits on any number of threads.
  template <class T>
  static matrix<T> gaussian(execution& exec, index_t rows, index_t cols, std::uint64_t seed) {
    matrix<T> out(rows, cols);
    detail::for_row_runs(max_threads(exec), rows, [&](index_t r, index_t n) {
      ogpsa::detail::gaussian_panel(seed, r, n, cols, out.data() + r, rows);
    });
    return out;
  }

  template <class T, class S>
  static void copy_into(execution& exec, ref<const S> src, matrix<T>& dst, index_t col) {
    detail::with_map(src, [&](const auto& s) {
      detail::for_row_runs(max_threads(exec), src.rows, [&](index_t r, index_t n) {
        dst.block(r, col, n, src.cols) = s.middleRows(r, n).template cast<T>();
      });
    });
  }

  template <class T, class S>
  static void add_into(execution& exec, ref<const S> src, matrix<T>& dst, index_t col) {
    detail::with_map(src, [&](const auto& s) {
      detail::for_row_runs(max_threads(exec), src.rows, [&](index_t r, index_t n) {
        dst.block(r, col, n, src.cols) += s.middleRows(r, n).template cast<T>();
      });
    });
  }

  template <class S>
  static bool all_finite(execution&, ref<const S> src) {
    // 16-bit types have no arithmetic of their own: test them as floats.
    return detail::with_map(src, [](const auto& s) { return s.template cast<working_t<S>>().allFinite(); });
  }

  /// a^T b accumulated in double (float data is widened panel by panel); exactly symmetric when
  /// `a` and `b` are the same matrix.
  template <class T>
  static host_matrix gram(execution& exec, const matrix<T>& a, const matrix<T>& b) {
    const detail::columns_ref<T> ra = detail::columns_of<T>(a), rb = detail::columns_of<T>(b);
    const auto others = std::span(&rb, &a == &b ? 0 : 1);  // none: the Gram matrix of a, exactly symmetric
    return detail::stacked_gram<T>(max_threads(exec), std::span(&ra, 1), others);
  }

  /// The same for the parts side by side, [p_1 p_2 ...]^T b, in one pass over the rows.
  template <class T>
  static host_matrix gram(execution& exec, const std::vector<matrix<T>>& parts, const matrix<T>& b) {
    const detail::columns_ref<T> rb = detail::columns_of<T>(b);
    const auto refs = detail::columns_of<T>(std::span(parts));
    return detail::stacked_gram<T>(max_threads(exec), refs, std::span(&rb, 1));
  }

  /// [a tail]^T tail, in one pass over the rows: `tail` (column-major, in host memory) is read
  /// where it lies, for example a caller's columns that an estimator does not keep.
  template <class T>
  static host_matrix gram_with_tail(execution& exec, const matrix<T>& a, ref<const T> tail) {
    require_column_major(tail, "ogpsa::cpu::backend::gram_with_tail");
    return detail::stacked_gram<T>(max_threads(exec), detail::with_tail<T>(a, tail), std::span(&tail, 1));
  }

  /// The Gram matrix of the parts side by side, [p_1 p_2 ...]^T [p_1 p_2 ...], in one pass over the
  /// rows (however many parts: a stream of single snapshots is read once, not once per pair).
  template <class T>
  static host_matrix gram(execution& exec, const std::vector<matrix<T>>& parts) {
    return detail::stacked_gram<T>(max_threads(exec), detail::columns_of<T>(std::span(parts)), {});
  }

  /// |a|_F^2 accumulated in double.
  template <class T>
  static double squared_norm(execution&, const matrix<T>& a) {
    if constexpr (std::is_same_v<T, double>) {
      return a.squaredNorm();
    } else {
      // Widened a cache-sized segment at a time, so that the reduction runs on packets. One buffer
      // for all (Eigen's resize of a vector leaves it dangling when the allocation fails).
      constexpr index_t segment = 4096;
      const auto flat = a.reshaped();
      host_vector wide(std::min(segment, flat.size()));
      double sum = 0;
      for (index_t i = 0; i < flat.size(); i += segment) {
        const index_t n = std::min(segment, flat.size() - i);
        wide.head(n) = flat.segment(i, n).template cast<double>();
        sum += wide.head(n).squaredNorm();
      }
      return sum;
    }
  }

  /// a a^T accumulated in double: the Gram matrix of the rows, for wide data.
  template <class T>
  static host_matrix row_gram(execution&, const matrix<T>& a) {
    host_matrix g = host_matrix::Zero(a.rows(), a.rows());
    for (index_t c = 0; c < a.cols(); c += detail::gram_panel) {
      const index_t n = std::min(detail::gram_panel, a.cols() - c);
      if constexpr (std::is_same_v<T, double>) g.selfadjointView<Eigen::Lower>().rankUpdate(a.middleCols(c, n));
      else g.selfadjointView<Eigen::Lower>().rankUpdate(a.middleCols(c, n).template cast<double>().eval());
    }
    g.template triangularView<Eigen::StrictlyUpper>() = g.transpose();
    return g;
  }

  template <class T>
  static matrix<T> multiply(execution& exec, const matrix<T>& a, const host_matrix& x) {
    matrix<T> out(a.rows(), x.cols());
    const detail::columns_ref<T> ra = detail::columns_of<T>(a);
    detail::stacked_product<T>(max_threads(exec), std::span(&ra, 1), x, out, false);
    return out;
  }

  /// out += a x.
  template <class T>
  static void multiply_add(execution& exec, const matrix<T>& a, const host_matrix& x, matrix<T>& out) {
    const detail::columns_ref<T> ra = detail::columns_of<T>(a);
    detail::stacked_product<T>(max_threads(exec), std::span(&ra, 1), x, out, true);
  }

  /// [p_1 p_2 ...] x, in one pass over the rows (x has one row per column of all parts).
  template <class T>
  static matrix<T> multiply(execution& exec, const std::vector<matrix<T>>& parts, const host_matrix& x) {
    matrix<T> out(parts.empty() ? 0 : parts.front().rows(), x.cols());
    detail::stacked_product<T>(max_threads(exec), detail::columns_of<T>(std::span(parts)), x, out, false);
    return out;
  }

  /// a <- a x in place, for a square x (cols(a) x cols(a)): no second matrix of a's size.
  template <class T>
  static void multiply_in_place(execution& exec, matrix<T>& a, const host_matrix& x) {
    const detail::columns_ref<T> ra = detail::columns_of<T>(a);
    detail::stacked_product<T>(max_threads(exec), std::span(&ra, 1), x, a, false);
  }

  /// p_1 <- [p_1 p_2 ...] x in place, in one pass over the rows (x has one row per column of all
  /// parts and cols(p_1) columns); the other parts are only read.
  template <class T>
  static void multiply_in_place(execution& exec, std::vector<matrix<T>>& parts, const host_matrix& x) {
    const auto refs = detail::columns_of<T>(std::span(parts));
    detail::stacked_product<T>(max_threads(exec), refs, x, parts.front(), false);
  }

  /// a <- [a tail] x in place (x has cols(a) + cols(tail) rows and cols(a) columns), in one pass
  /// over the rows; `tail` (column-major, in host memory) is only read, where it lies.
  template <class T>
  static void multiply_in_place(execution& exec, matrix<T>& a, ref<const T> tail, const host_matrix& x) {
    require_column_major(tail, "ogpsa::cpu::backend::multiply_in_place");
    detail::stacked_product<T>(max_threads(exec), detail::with_tail<T>(a, tail), x, a, false);
  }

  template <class T>
  static matrix<T> transpose(execution&, const matrix<T>& a) {
    return a.transpose();
  }

  template <class T>
  static matrix<T> gather_columns(execution&, const matrix<T>& a, const std::vector<index_t>& cols) {
    matrix<T> out(a.rows(), static_cast<index_t>(cols.size()));
    for (std::size_t j = 0; j < cols.size(); ++j) out.col(static_cast<index_t>(j)) = a.col(cols[j]);
    return out;
  }

  template <class T>
  static matrix<T> concatenate(execution&, const std::vector<matrix<T>>& parts) {
    if (parts.size() == 1) return parts.front();
    index_t cols = 0;
    for (const auto& p : parts) cols += p.cols();
    matrix<T> out(parts.empty() ? 0 : parts.front().rows(), cols);
    index_t at = 0;
    for (const auto& p : parts) {
      out.middleCols(at, p.cols()) = p;
      at += p.cols();
    }
    return out;
  }

  /// The factors `householder_qr` leaves beside the parts it factored in place.
  template <class T>
  struct qr_factors {
    detail::householder_factors<T> reflectors;
    host_matrix r;  ///< R, min(rows, cols) x cols, upper triangular
  };

  /// Householder QR in place of the parts side by side, A = [p_1 p_2 ...] = Q R (rows x cols, any
  /// shape): the parts then hold Q's reflectors (and R's columns above them), so nothing of A's size
  /// is allocated; R comes back on the host. Runs on the calling thread
  /// (`ogpsa/cpu/detail/householder.hpp`).
  template <class T>
  static qr_factors<T> householder_qr(execution&, std::vector<matrix<T>>& parts) {
    const std::vector<detail::column_block<T>> blocks = blocks_of<T>(parts);
    qr_factors<T> f{detail::householder_qr<T>(blocks), {}};
    f.r = detail::upper_factor(std::span(blocks), f.reflectors);
    return f;
  }

  /// Q [x; 0] (rows x cols(x)) for parts factored by `householder_qr`; x has min(rows, cols) rows.
  /// \throws shape_error for another number of rows.
  template <class T>
  static matrix<T> apply_q(execution&, const std::vector<matrix<T>>& parts, const qr_factors<T>& f,
                           const host_matrix& x) {
    OGPSA_REQUIRE(x.rows() == f.r.rows(), shape_error, "ogpsa::cpu::backend::apply_q",
                  "x must have " << f.r.rows() << " rows (R's), got " << x.rows());
    matrix<T> out = matrix<T>::Zero(f.reflectors.rows, x.cols());
    out.topRows(x.rows()) = x.template cast<T>();
    std::vector<detail::column_block<const T>> blocks;
    for (const matrix<T>& p : parts) blocks.push_back({p.data(), p.rows(), p.cols(), 1, p.rows()});
    detail::apply_q(std::span<const detail::column_block<const T>>(blocks), f.reflectors, out);
    return out;
  }

  /// a <- an orthonormal basis of its range, in place (Householder QR, then Q formed where a was;
  /// completed to a's width when a is rank deficient). a is tall: rows >= cols.
  /// \throws shape_error for a wide a.
  template <class T>
  static void householder_basis(execution&, matrix<T>& a) {
    OGPSA_REQUIRE(a.rows() >= a.cols(), shape_error, "ogpsa::cpu::backend::householder_basis",
                  "needs rows >= cols, got " << a.rows() << " x " << a.cols());
    const detail::column_block<T> block{a.data(), a.rows(), a.cols(), 1, a.rows()};
    detail::form_q(block, detail::householder_qr<T>(std::span(&block, 1)));
  }

  /// R (min(rows, cols) x rows, upper triangular, on the host) of A^T = Q R for the parts side by
  /// side, A = [p_1 p_2 ...]; A is only read. A^T is factored a slab of `rows` of its rows at a time
  /// below the R of those before (TSQR), so beside A this needs one (2 rows) x rows matrix of T.
  template <class T>
  static host_matrix transposed_r(execution&, const std::vector<matrix<T>>& parts) {
    const index_t d = parts.empty() ? 0 : parts.front().rows(), slab = std::max<index_t>(d, 1);
    matrix<T> stack(d + slab, d);
    index_t held = 0;  // rows of R at the top of the stack
    for (const matrix<T>& p : parts)
      for (index_t c = 0; c < p.cols(); c += slab) {
        const index_t n = std::min(slab, p.cols() - c);
        stack.middleRows(held, n) = p.middleCols(c, n).transpose();
        const detail::column_block<T> block{stack.data(), held + n, d, 1, stack.rows()};
        (void)detail::householder_qr<T>(std::span(&block, 1));
        held = std::min(held + n, d);
        stack.topRows(held).template triangularView<Eigen::StrictlyLower>().setZero();
      }
    return stack.topRows(held).template cast<double>();
  }

  /// Modified Gram-Schmidt with one re-orthogonalization pass, in place. Column j becomes
  /// w / (|w| + eps), where w is column j minus its components along the kept columns before it;
  /// when |w| + eps < drop, the column is zeroed and reported dropped. Returns |w| per column
  /// (negative for dropped ones).
  template <class T>
  static std::vector<double> gram_schmidt(execution&, matrix<T>& q, double eps, double drop) {
    std::vector<double> norms(static_cast<std::size_t>(q.cols()), -1.0);
    for (index_t j = 0; j < q.cols(); ++j) {
      for (int pass = 0; pass < 2; ++pass)
        for (index_t i = 0; i < j; ++i)
          if (norms[static_cast<std::size_t>(i)] >= 0) q.col(j) -= q.col(i).dot(q.col(j)) * q.col(i);
      const double norm = static_cast<double>(q.col(j).norm());
      if (!(norm + eps >= drop)) {
        q.col(j).setZero();
        continue;
      }
      q.col(j) /= static_cast<T>(norm + eps);
      norms[static_cast<std::size_t>(j)] = norm;
    }
    return norms;
  }

  template <class To, class From>
  static matrix<To> convert(execution&, const matrix<From>& m) {
    return m.template cast<To>();
  }

  template <class T>
  static Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> to_host(execution&, const matrix<T>& m) {
    return m;
  }

  template <class T>
  static matrix<T> from_host(execution&, const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>& h) {
    return h;
  }

  template <class T>
  static std::vector<detail::column_block<T>> blocks_of(std::vector<matrix<T>>& parts) {
    std::vector<detail::column_block<T>> blocks;
    for (matrix<T>& p : parts) blocks.push_back({p.data(), p.rows(), p.cols(), 1, p.rows()});
    return blocks;
  }

  template <class T>
  static void require_column_major(const ref<const T>& r, const char* where) {
    OGPSA_REQUIRE(r.column_major(), layout_error, where,
                  "the columns must be column-major (row stride 1), got row stride " << r.row_stride);
  }

  /// Projects every column of `target` (the block's target-space vectors) in place:
  /// c = U^T x, then x <- s x - U r where the rule turns c into (r, s), column by column.
  /// A block whose rule removes nothing and keeps the scale is not written. NaN/Inf in the
  /// gradient leave it untouched and are reported through `stats.finite`.
  /// \throws shape_error when the basis and the target differ in their number of rows.
  template <class Basis, class G, class Rule>
  static void project(execution& exec, const matrix<Basis>& basis, ref<G> target, const Rule& rule,
                      workspace& ws, projection_stats& stats, bool diagnostics) {
    projection_task<matrix<Basis>, ref<G>> task{&basis, target, {}};
    project_all(exec, std::span(&task, 1), rule, ws, diagnostics);
    stats = task.stats;
  }

  /// Projects every task's target with its basis (see `project`), filling each task's stats:
  /// `coefficients_all`, then `update_all`. Each half is one team of threads that splits the work
  /// by bytes, not by task. Dot products accumulate in `accumulator_t<G, Basis>` (float for float
  /// and 16-bit data) within chunks of rows and in double across them; results do not depend on
  /// the number of threads.
  /// The flags are computed whatever `flags_report` says: on the host they cost nothing.
  /// \throws shape_error when a basis and its target differ in their number of rows (before
  ///         anything is written).
  template <class Basis, class G, class Rule>
  static void project_all(execution& exec, std::span<projection_task<matrix<Basis>, ref<G>>> tasks,
                          const Rule& rule, workspace& ws, bool diagnostics,
                          flags_report /*flags*/ = flags_report::read) {
    coefficients_all(exec, tasks, ws, diagnostics);
    update_all(exec, tasks, rule, ws, diagnostics);
  }

  /// The first half of `project_all`: every task's coefficients c = U^T x, packed into
  /// `ws.packed_coefficients<Acc>()`, which a distributed run may all-reduce before `update_all`.
  /// \throws shape_error as `project_all`.
  template <class Basis, class G>
  static void coefficients_all(execution& exec, std::span<projection_task<matrix<Basis>, ref<G>>> tasks,
                               workspace& ws, bool diagnostics) {
    using acc = accumulator_t<G, Basis>;
    detail::many_block_projection<acc, Basis, G>(tasks, ws.template get<acc>(), diagnostics).coefficients(exec);
  }

  /// The second half of `project_all`, for the same tasks and diagnostics flag: applies the rule
  /// to the packed coefficients and writes x <- s x - U r, filling each task's stats. With
  /// diagnostics it measures what it wrote (`ws.packed_measurements<Acc>()`); the stats are this
  /// process's measures, the whole block's unless its target rows are split across ranks.
  /// \throws invalid_argument for a rule that scales gradients and a target of several columns.
  template <class Basis, class G, class Rule>
  static void update_all(execution& exec, std::span<projection_task<matrix<Basis>, ref<G>>> tasks,
                         const Rule& rule, workspace& ws, bool diagnostics) {
    using acc = accumulator_t<G, Basis>;
    detail::many_block_projection<acc, Basis, G>(tasks, ws.template get<acc>(), diagnostics).update(exec, rule);
  }

  /// After `update_all` with diagnostics on the same tasks, and a sum of
  /// `ws.packed_measurements<Acc>()` across the ranks that share the tasks' target rows: forms
  /// each task's measured stats (|x_after|^2, |U^T x_after|^2) from those sums.
  template <class Basis, class G>
  static void measure_all(execution&, std::span<projection_task<matrix<Basis>, ref<G>>> tasks, workspace& ws) {
    using acc = accumulator_t<G, Basis>;
    detail::many_block_projection<acc, Basis, G>(tasks, ws.template get<acc>(), true).measure();
  }
};

}  // namespace ogpsa::cpu

template <>
struct ogpsa::backend_for<ogpsa::host_memory_tag> {
  using type = ogpsa::cpu::backend;
};
