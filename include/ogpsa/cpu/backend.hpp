#pragma once
/// \file
/// The host backend: Eigen for every primitive listed in `ogpsa/backend.hpp`.
///
/// Threads: Eigen's matrix products use OpenMP when the program is built with it
/// (`OMP_NUM_THREADS` or `Eigen::setNbThreads` set their number).

#include <algorithm>
#include <cmath>
#include <span>
#include <type_traits>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/QR>

#include "ogpsa/backend.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/element.hpp"
#include "ogpsa/memory_space.hpp"

namespace ogpsa::cpu {

/// The CPU execution context. Stateless: Eigen and OpenMP own the threads.
struct execution {};

namespace detail {

template <class T>
using dense = Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, Eigen::Dynamic>;
template <class T>
using dense_row_major =
    Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class Plain, class T>
using map_of = Eigen::Map<std::conditional_t<std::is_const_v<T>, const Plain, Plain>, 0,
                          Eigen::OuterStride<>>;

/// Calls `f` with an Eigen map of `r`, column- or row-major as its strides say.
template <class T, class F>
decltype(auto) with_map(const ogpsa::detail::matrix_ref<T, host_memory_tag>& r, F&& f) {
  if (r.column_major()) {
    map_of<dense<T>, T> m(r.data, r.rows, r.cols, Eigen::OuterStride<>(r.col_stride));
    return f(m);
  }
  map_of<dense_row_major<T>, T> m(r.data, r.rows, r.cols, Eigen::OuterStride<>(r.row_stride));
  return f(m);
}

/// Rows (or columns) per panel when a float product is accumulated in double: small enough to stay in cache.
inline constexpr index_t gram_panel = 2048;

}  // namespace detail

/// The Eigen backend.
struct backend {
  using memory_space = host_memory_tag;
  using execution = cpu::execution;
  template <class T>
  using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  template <class T>
  using ref = ogpsa::detail::matrix_ref<T, host_memory_tag>;

  /// Reusable buffers for `project`, so that a projection allocates nothing once warm.
  struct workspace {
    Eigen::MatrixXf coefficients_f, original_f;
    Eigen::MatrixXd coefficients_d, original_d;
    std::vector<float> packed_f;   // coefficients_all / update_all
    std::vector<double> packed_d;
    template <class Acc>
    auto& coefficients() {
      if constexpr (std::is_same_v<Acc, float>) return coefficients_f;
      else return coefficients_d;
    }
    /// The buffer `coefficients_all` fills and `update_all` reads (layout: `ogpsa/backend.hpp`).
    template <class Acc>
    std::span<Acc> packed_coefficients() {
      return packed<Acc>();
    }
    template <class Acc>
    std::vector<Acc>& packed() {
      if constexpr (std::is_same_v<Acc, float>) return packed_f;
      else return packed_d;
    }
    template <class Acc>
    auto& original() {
      if constexpr (std::is_same_v<Acc, float>) return original_f;
      else return original_d;
    }
  };

  template <class T>
  static matrix<T> zeros(execution&, index_t rows, index_t cols) {
    return matrix<T>::Zero(rows, cols);
  }

  template <class T, class S>
  static void copy_into(execution&, ref<const S> src, matrix<T>& dst, index_t col) {
    detail::with_map(src, [&](const auto& s) { dst.middleCols(col, src.cols) = s.template cast<T>(); });
  }

  template <class T, class S>
  static void add_into(execution&, ref<const S> src, matrix<T>& dst, index_t col) {
    detail::with_map(src, [&](const auto& s) { dst.middleCols(col, src.cols) += s.template cast<T>(); });
  }

  template <class S>
  static bool all_finite(execution&, ref<const S> src) {
    return detail::with_map(src, [](const auto& s) { return s.allFinite(); });
  }

  /// a^T b accumulated in double (float data is widened panel by panel); exactly symmetric when
  /// `a` and `b` are the same matrix.
  template <class T>
  static host_matrix gram(execution&, const matrix<T>& a, const matrix<T>& b) {
    const bool self = &a == &b;
    host_matrix g = host_matrix::Zero(a.cols(), b.cols());
    if constexpr (std::is_same_v<T, double>) {
      if (self) g.selfadjointView<Eigen::Lower>().rankUpdate(a.transpose());
      else g.noalias() = a.transpose() * b;
    } else {
      for (index_t r = 0; r < a.rows(); r += detail::gram_panel) {
        const index_t n = std::min(detail::gram_panel, a.rows() - r);
        const host_matrix pa = a.middleRows(r, n).template cast<double>();
        if (self) g.selfadjointView<Eigen::Lower>().rankUpdate(pa.transpose());
        else g.noalias() += pa.transpose() * b.middleRows(r, n).template cast<double>();
      }
    }
    if (self) g.template triangularView<Eigen::StrictlyUpper>() = g.transpose();
    return g;
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
  static matrix<T> multiply(execution&, const matrix<T>& a, const host_matrix& x) {
    return a * x.template cast<T>();
  }

  /// out += a x.
  template <class T>
  static void multiply_add(execution&, const matrix<T>& a, const host_matrix& x, matrix<T>& out) {
    out.noalias() += a * x.template cast<T>();
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

  /// Householder QR of a tall matrix: q (rows x cols, orthonormal columns) and r (cols x cols).
  template <class T>
  static std::pair<matrix<T>, host_matrix> thin_qr(execution&, const matrix<T>& a) {
    const index_t k = std::min(a.rows(), a.cols());
    Eigen::HouseholderQR<matrix<T>> qr(a);
    matrix<T> q = qr.householderQ() * matrix<T>::Identity(a.rows(), k);
    host_matrix r = qr.matrixQR().topRows(k).template triangularView<Eigen::Upper>().toDenseMatrix()
                        .template cast<double>();
    return {std::move(q), std::move(r)};
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

  /// Projects every column of `target` (the block's target-space vectors) in place:
  /// c = U^T x, then x <- s x - U r where the rule turns c into (r, s), column by column.
  /// A column whose rule removes nothing and keeps the scale is not written. NaN/Inf in the
  /// gradient leave it untouched and are reported through `stats.finite`.
  template <class Basis, class G, class Rule>
  static void project(execution&, const matrix<Basis>& basis, ref<G> target, const Rule& rule,
                      workspace& ws, projection_stats& stats, bool diagnostics) {
    using acc = accumulator_t<G, Basis>;
    stats = projection_stats{};
    if (basis.cols() == 0 || target.size() == 0) return;
    detail::with_map(target, [&](auto& x) {
      auto& c = ws.template coefficients<acc>();
      c.noalias() = basis.template cast<acc>().transpose() * x.template cast<acc>();
      if (diagnostics) stats.gradient_sq = static_cast<double>(x.template cast<acc>().squaredNorm());
      update(basis, x, c, rule, ws, stats, diagnostics);
    });
  }

  /// Projects every task's target with its basis (see `project`), filling each task's stats.
  template <class Basis, class G, class Rule>
  static void project_all(execution& exec, std::span<projection_task<matrix<Basis>, ref<G>>> tasks,
                          const Rule& rule, workspace& ws, bool diagnostics) {
    for (auto& task : tasks) project(exec, *task.basis, task.target, rule, ws, task.stats, diagnostics);
  }

  // ---- Two-phase projection for distributed reducers (issue 7) ---------------------------------
  // Minimal versions of the primitives NOTES.md asks the kernel work (issue 3) for; that work's
  // one-pass kernels replace these when it lands. Layout of the packed buffer: ogpsa/backend.hpp.

  /// Phase 1: c = U^T x of every task (and |x|^2 with diagnostics) into `ws.packed_coefficients`.
  template <class Basis, class G>
  static void coefficients_all(execution&, std::span<projection_task<matrix<Basis>, ref<G>>> tasks,
                               workspace& ws, bool diagnostics) {
    using acc = accumulator_t<G, Basis>;
    auto& packed = ws.template packed<acc>();
    packed.assign(static_cast<std::size_t>(packed_size(tasks, diagnostics)), acc(0));
    acc* c = packed.data();
    acc* squares = c + packed_size(tasks, false);
    for (auto& task : tasks) {
      const index_t k = task.basis->cols(), n = task.target.cols;
      if (k > 0 && task.target.size() > 0)
        detail::with_map(task.target, [&](auto& x) {
          Eigen::Map<Eigen::Matrix<acc, Eigen::Dynamic, Eigen::Dynamic>>(c, k, n).noalias() =
              task.basis->template cast<acc>().transpose() * x.template cast<acc>();
          if (diagnostics) *squares = x.template cast<acc>().squaredNorm();
        });
      c += k * n;
      ++squares;
    }
  }

  /// Phase 2: the rule and x <- s x - U r for every task, from the packed coefficients (summed
  /// across ranks in between, for sharded blocks); fills each task's stats as `project` does.
  template <class Basis, class G, class Rule>
  static void update_all(execution&, std::span<projection_task<matrix<Basis>, ref<G>>> tasks,
                         const Rule& rule, workspace& ws, bool diagnostics) {
    using acc = accumulator_t<G, Basis>;
    acc* c = ws.template packed<acc>().data();
    const acc* squares = c + packed_size(tasks, false);
    for (auto& task : tasks) {
      const index_t k = task.basis->cols(), n = task.target.cols;
      task.stats = projection_stats{};
      if (k > 0 && task.target.size() > 0)
        detail::with_map(task.target, [&](auto& x) {
          Eigen::Map<Eigen::Matrix<acc, Eigen::Dynamic, Eigen::Dynamic>> coefficients(c, k, n);
          if (diagnostics) task.stats.gradient_sq = static_cast<double>(*squares);
          update(*task.basis, x, coefficients, rule, ws, task.stats, diagnostics);
        });
      c += k * n;
      ++squares;
    }
  }

 private:
  /// Elements of the packed buffer: every task's k x cols coefficients, then |x|^2 per task.
  template <class Task>
  static index_t packed_size(std::span<Task> tasks, bool diagnostics) {
    index_t size = diagnostics ? static_cast<index_t>(tasks.size()) : 0;
    for (const Task& task : tasks) size += task.basis->cols() * task.target.cols;
    return size;
  }

  /// The rule and the update of one block, given its coefficients c = U^T x (rewritten into r).
  template <class Basis, class X, class C, class Rule>
  static void update(const matrix<Basis>& basis, X& x, C& c, const Rule& rule, workspace& ws,
                     projection_stats& stats, bool diagnostics) {
    using acc = typename C::Scalar;
    using value = typename X::Scalar;
    stats.finite = c.allFinite() && std::isfinite(stats.gradient_sq);
    if (!stats.finite) return;
    stats.coefficient_sq = static_cast<double>(c.squaredNorm());
    auto& original = ws.template original<acc>();
    if (diagnostics) original = c;
    const index_t k = c.rows();
    bool any_removed = false;
    for (index_t j = 0; j < c.cols(); ++j) {
      const acc s = rule.apply(c.col(j).data(), k);
      stats.scale = static_cast<double>(s);
      if (s != acc(1)) x.col(j) *= static_cast<value>(s);
      any_removed = any_removed || s != acc(1) || !c.col(j).isZero(0);
    }
    if (diagnostics) record(stats, original, c);
    if (!any_removed) return;
    stats.changed = true;
    if constexpr (std::is_same_v<value, Basis> && std::is_same_v<Basis, acc>)
      x.noalias() -= basis * c;
    else
      x -= (basis.template cast<acc>() * c).template cast<value>();
  }

  template <class M, class R>
  static void record(projection_stats& stats, const M& original, const R& removed) {
    stats.removed_dot = static_cast<double>(original.cwiseProduct(removed).sum());
    stats.removed_sq = static_cast<double>(removed.squaredNorm());
    stats.remaining_coefficient_sq =
        static_cast<double>((original * static_cast<typename M::Scalar>(stats.scale) - removed).squaredNorm());
  }
};

}  // namespace ogpsa::cpu

template <>
struct ogpsa::backend_for<ogpsa::host_memory_tag> {
  using type = ogpsa::cpu::backend;
};
