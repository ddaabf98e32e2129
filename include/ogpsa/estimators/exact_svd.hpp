#pragma once
/// \file
/// Exact top-k left singular vectors of all reference snapshots.

#include <cmath>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "ogpsa/backend.hpp"
#include "ogpsa/detail/dense.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/detail/orthonormalize.hpp"
#include "ogpsa/detail/rounds.hpp"
#include "ogpsa/detail/snapshots.hpp"
#include "ogpsa/detail/spectral.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/estimator.hpp"
#include "ogpsa/family.hpp"
#include "ogpsa/subspace.hpp"

namespace ogpsa {

template <class Backend, class Work>
class exact_svd_pass;

/// Keeps every reference snapshot (the columns fed in a pass, A = [a_1 ... a_m], d x m) and
/// returns the top-k left singular vectors of A, oriented so each points along the data
/// (sum_j u_i^T a_j >= 0, which `conflict_only` relies on).
///
/// Snapshots and the basis are kept in the working type (float, or double for a double basis).
/// Route: the Gram matrix of the short side (A^T A for tall data, A A^T for wide), always
/// accumulated in double, and a symmetric eigen-solver; its error in a direction is about
/// eps_double * (s_1/s_k)^2, so when (s_k/s_1)^2 < sqrt(eps_double) the estimator falls back to
/// Householder QR followed by an SVD of the small triangular factor: for tall data the snapshots
/// are factored in place and Q is applied to the k directions only (U = Q [U_R; 0]); for wide data
/// only the R of A^T is needed, factored a slab of d columns at a time. Gram-route bases are
/// re-orthonormalized (Cholesky QR). Directions with s_i <= min(d, m) * eps * s_1 are numerically
/// zero: never kept, and reported as dropped when a fixed rank asked for them.
///
/// Peak memory of a pass (w bytes per working-type value; measured in tests/estimators/memory.cpp,
/// on either route): the snapshots and the basis, w d (m + k), plus on the host O(m^2) doubles for
/// tall data, or at most 8 (3 d^2 + 2048 d) bytes for wide data (the d x d Gram matrix, its
/// eigen-decomposition or the QR route's 2d x d slab stack, and a widened panel).
///
/// Sharded blocks (`ogpsa/sharding.hpp`, `estimate`): with the target rows split, the m x m Gram
/// matrix A^T A is summed across ranks and each rank computes its own rows of U (re-orthonormalized
/// with the summed U^T U; the QR route becomes TSQR: every rank's R, one slot per rank, summed into
/// one stack and factored again); with the columns split, A A^T (d x d) and the column sum that
/// orients U are summed and every rank gets all of U. Rounds of sums per refresh (all blocks of the
/// model share each round) and values summed per block, both tested:
/// - split target rows: 2 rounds, m^2 + 1 then k^2 values (U^T U); when the Gram route declines,
///   the TSQR stack (ranks x m^2) replaces U^T U in round 2; when the summed U^T U is not positive
///   definite (the conditioning test makes it rare, rounding could), TSQR takes a third round.
/// - split target columns: 1 round of d^2 + d + 1 values, and with the QR route a second of
///   ranks x d^2 (the stack of the ranks' R factors of A^T).
/// Split target columns is exact at an O(d^2) cost per block and rank: the d x d sum and, during
/// the round, the reducer's packed copy of it (2 x 8 d^2 bytes; measured in
/// tests/estimators/memory.cpp), then its eigen-decomposition. That is the case of `right` blocks
/// sharded by rows (FSDP), where d is a layer's input dimension: 57 GB summed and 114 GB held per
/// rank and refresh for every linear layer of a 7B model. It is kept exact rather than refused;
/// `randomized_svd` estimates the same blocks with O(d (k + p)) sums.
///
/// Rank per block (`detail::choose_rank`): a fixed rank k keeps min(k, min(d, m)) directions (fewer
/// when the data has fewer numerically non-zero ones) and reports the shortfall as dropped, so one
/// block smaller than k never fails the pass; an energy threshold needs no rank at all
/// (`exact_svd{.energy = 0.9}`: any rank up to min(d, m)), and a rank given with it caps it.
///
/// Hyper-parameters (type, default, meaning): `include/ogpsa/README.md#exact_svd`, the one table
/// of them, checked against this struct by the test `docs.reference_tables`.
struct exact_svd {
  static constexpr const char* name = "exact_svd";
  /// The fixed rank when `rank` is unset and there is no energy threshold.
  static constexpr index_t default_rank = 8;

  std::optional<index_t> rank{};
  std::optional<double> energy{};

  /// \throws invalid_argument for rank < 1 or an energy threshold outside (0, 1].
  void validate() const { detail::validate_rank_selection(rank, energy, "ogpsa::exact_svd::validate"); }

  /// The fixed rank, or with an energy threshold the cap (none when unset).
  std::optional<index_t> selected_rank() const {
    return energy ? rank : std::optional<index_t>(rank.value_or(default_rank));
  }

  constexpr bool supports(family) const noexcept { return true; }

  template <class Backend, class Work>
  using pass = exact_svd_pass<Backend, Work>;
};

/// The work of `exact_svd` on one block during one reference pass.
template <class Backend, class Work>
class exact_svd_pass {
 public:
  using execution = typename Backend::execution;
  using matrix = typename Backend::template matrix<Work>;

  exact_svd_pass(const exact_svd& params, index_t dimension, std::string block)
      : params_(params), dimension_(dimension), block_(std::move(block)) {}

  template <class S>
  void feed(execution& exec, detail::matrix_ref<const S, typename Backend::memory_space> columns,
            index_t /*set*/) {
    data_.add(exec, columns);
  }

  subspace<Work, Backend> finish(execution& exec) {
    require_snapshots(data_.columns);
    return dimension_ <= data_.columns ? wide(exec) : tall(exec);
  }

  /// The estimate of a sharded block, awaiting sums across ranks: with the target rows split,
  /// A^T A is a sum of the ranks' parts (the tall route); with the columns split, A A^T is (the
  /// wide route). An unsplit block is `finish`, nothing awaited.
  detail::rounds<subspace<Work, Backend>> estimate(execution& exec, target_shard shard) {
    if (shard.split == target_split::rows) return split_rows(exec, shard.position);
    if (shard.split == target_split::columns) return split_columns(exec, shard.position);
    return unsplit(exec);
  }

 private:
  using result = subspace<Work, Backend>;
  static constexpr double work_eps = std::numeric_limits<Work>::epsilon();

  index_t limit() const { return std::min(dimension_, data_.columns); }

  /// d > m: eigen-decomposition of A^T A; U = A V S^-1. The QR route factors the snapshots in
  /// place (they are not needed after the pass), A = Q R, and applies Q to R's k directions only:
  /// U = Q [U_R; 0], never Q itself.
  subspace<Work, Backend> tall(execution& exec) {
    result out;
    double total = 0;
    {
      const host_matrix g = Backend::gram(exec, data_.parts);
      const detail::spectrum s = detail::gram_spectrum(g);
      total = g.trace();
      const index_t k = select(s.values, total, limit(), out);
      if (k == 0 || !ill_conditioned(s.values, k)) {
        out.basis = Backend::multiply(exec, data_.parts, oriented_inverse_scaled(s, k));
        detail::reorthonormalize<Backend>(exec, out.basis);
        return out;
      }
    }
    const auto factors = Backend::householder_qr(exec, data_.parts);
    const host_matrix x = directions_of_r(factors.r, total, limit(), out);
    out.basis = Backend::apply_q(exec, data_.parts, factors, x);
    return out;
  }

  /// V S^-1 for the top k eigenpairs of A^T A, each column signed so that A's columns have a
  /// non-negative sum of coefficients on the direction A V S^-1 gives.
  static host_matrix oriented_inverse_scaled(const detail::spectrum& s, index_t k) {
    host_matrix v = s.vectors.leftCols(k);
    const host_vector sign = detail::orientation(v.colwise().sum().transpose(), v);
    for (index_t i = 0; i < k; ++i) v.col(i) *= sign(i) / s.values(i);
    return v;
  }

  /// A's top directions in Q's coordinates, for A = Q R: R's left singular vectors U_R (the basis is
  /// Q U_R), each signed to point along the data (A^T Q U_R = R^T U_R holds the data's coefficients).
  /// Records strengths, energy and dropped directions in `out`.
  host_matrix directions_of_r(const host_matrix& r, double total, index_t limit, result& out) const {
    const Eigen::JacobiSVD<host_matrix> svd(r, Eigen::ComputeFullU);
    out = {};
    const index_t k = select(svd.singularValues(), total, limit, out);
    const host_matrix ur = svd.matrixU().leftCols(k);
    const host_vector sign = detail::orientation((r.transpose() * ur).colwise().sum().transpose(), ur);
    return ur * sign.asDiagonal();
  }

  /// d <= m: eigen-decomposition of A A^T gives U directly. The QR route needs only the R of A^T,
  /// which the backend computes a slab of columns of A at a time (no copy of A).
  subspace<Work, Backend> wide(execution& exec) {
    result out;
    double total = 0;
    {
      const host_matrix g = row_gram(exec);
      const detail::spectrum s = detail::gram_spectrum(g);
      total = g.trace();
      const index_t k = select(s.values, total, limit(), out);
      if (k == 0 || !ill_conditioned(s.values, k)) return oriented(exec, s.vectors.leftCols(k), column_sum(exec), out);
    }
    return from_transposed_r(exec, Backend::transposed_r(exec, data_.parts), total, limit(), column_sum(exec), out);
  }

  /// A A^T, d x d, in double.
  host_matrix row_gram(execution& exec) const {
    host_matrix g = host_matrix::Zero(dimension_, dimension_);
    for (const matrix& c : data_.parts) g += Backend::row_gram(exec, c);
    return g;
  }

  /// The basis from the R of A^T = Q R: A = R^T Q^T, so A's left singular vectors are R's right
  /// singular vectors.
  subspace<Work, Backend> from_transposed_r(execution& exec, const host_matrix& r, double total, index_t limit,
                                            const host_vector& along, subspace<Work, Backend>& out) const {
    Eigen::JacobiSVD<host_matrix> svd(r, Eigen::ComputeFullV);
    out = {};
    const index_t k = select(svd.singularValues(), total, limit, out);
    return oriented(exec, svd.matrixV().leftCols(k), along, out);
  }

  /// `out` with the basis u, each direction signed to point along `along` (the data's column sum).
  subspace<Work, Backend> oriented(execution& exec, host_matrix u, const host_vector& along,
                                   subspace<Work, Backend>& out) const {
    const host_vector sign = detail::orientation(u.transpose() * along, u);
    u = u * sign.asDiagonal();
    out.basis = Backend::from_host(exec, Eigen::Matrix<Work, Eigen::Dynamic, Eigen::Dynamic>(u.template cast<Work>()));
    return std::move(out);
  }

  /// Chooses k (at most `limit`), records strengths, energy and dropped directions.
  index_t select(const host_vector& sigma, double total, index_t limit, subspace<Work, Backend>& out) const {
    return detail::select_rank(sigma, total, params_.selected_rank(), params_.energy, limit, work_eps, out);
  }

  // ---- sharded blocks: the same routes, with the partial sums awaited ---------------------------

  detail::rounds<result> unsplit(execution& exec) { co_return finish(exec); }

  /// Rows of A split: G = A^T A (m x m, m the same on every rank) and d are sums over ranks; each
  /// rank computes its rows of U = A V S^-1 and they are re-orthonormalized with the summed U^T U.
  detail::rounds<result> split_rows(execution& exec, rank_position position) {
    require_snapshots(data_.columns);
    host_matrix g = Backend::gram(exec, data_.parts);
    double dimension = static_cast<double>(dimension_);
    co_await detail::summed(span_of(g), std::span<double>(&dimension, 1));
    const index_t limit = std::min(static_cast<index_t>(dimension), data_.columns);
    const detail::spectrum s = detail::gram_spectrum(g);
    result out;
    const index_t k = select(s.values, g.trace(), limit, out);
    if (k == 0) {
      out.basis = Backend::template zeros<Work>(exec, dimension_, 0);
      co_return out;
    }
    if (!ill_conditioned(s.values, k)) {
      out.basis = Backend::multiply(exec, data_.parts, oriented_inverse_scaled(s, k));
      host_matrix uu = Backend::gram(exec, out.basis, out.basis);
      co_await detail::summed(span_of(uu));
      const Eigen::LLT<host_matrix> llt(uu);
      if (llt.info() == Eigen::Success) {  // the same on every rank: uu is; else the QR route
        out.basis = Backend::multiply(exec, out.basis, llt.matrixU().solve(host_matrix::Identity(k, k)));
        co_return out;
      }
    }
    // TSQR: each rank factors its rows in place, A_r = Q_r R_r; the stacked R_r (one slot per rank,
    // summed into place) are factored again, [R_1; ...; R_p] = Q_s R, so that A = diag(Q_r) Q_s R
    // and this rank's rows of U are Q_r (Q_s's slot rows) U_R.
    out = {};
    const auto factors = Backend::householder_qr(exec, data_.parts);
    const index_t m = data_.columns, held = factors.r.rows(), slot = position.rank * m;
    host_matrix stack = host_matrix::Zero(position.ranks * m, m);
    stack.middleRows(slot, held) = factors.r;
    co_await detail::summed(span_of(stack));
    const auto [qs, rs] = detail::host_qr(std::move(stack));
    const host_matrix x = directions_of_r(rs, g.trace(), limit, out);
    out.basis = Backend::apply_q(exec, data_.parts, factors, qs.middleRows(slot, held) * x);
    co_return out;
  }

  /// Columns of A split: A A^T (d x d), the column sum that orients U and m are sums over ranks
  /// (a rank may hold no column at all); every rank gets all of U.
  detail::rounds<result> split_columns(execution& exec, rank_position position) {
    host_vector along = data_.columns > 0 ? column_sum(exec) : host_vector::Zero(dimension_);
    double columns = static_cast<double>(data_.columns), total = 0;
    result out;
    index_t limit = 0;
    {
      host_matrix g = row_gram(exec);
      co_await detail::summed(span_of(g), span_of(along), std::span<double>(&columns, 1));
      require_snapshots(static_cast<index_t>(columns));
      limit = std::min(dimension_, static_cast<index_t>(columns));
      const detail::spectrum s = detail::gram_spectrum(g);
      total = g.trace();
      const index_t k = select(s.values, total, limit, out);
      if (k == 0 || !ill_conditioned(s.values, k)) co_return oriented(exec, s.vectors.leftCols(k), along, out);
    }
    // A^T = Q R and A's left singular vectors are R's right ones; split columns of A are split
    // rows of A^T, so TSQR's R (the stack of the ranks' R factors, factored again) is all we need.
    host_matrix stack = host_matrix::Zero(position.ranks * dimension_, dimension_);
    if (data_.columns > 0) {
      const host_matrix r = Backend::transposed_r(exec, data_.parts);
      stack.middleRows(position.rank * dimension_, r.rows()) = r;
    }
    co_await detail::summed(span_of(stack));
    co_return from_transposed_r(exec, detail::host_r(std::move(stack)), total, limit, along, out);
  }

  void require_snapshots(index_t columns) const {
    OGPSA_REQUIRE(columns > 0, state_error, "ogpsa::exact_svd::finish",
                  "block '" << block_ << "': no reference snapshot was fed");
  }

  static std::span<double> span_of(host_matrix& m) { return {m.data(), static_cast<std::size_t>(m.size())}; }
  static std::span<double> span_of(host_vector& v) { return {v.data(), static_cast<std::size_t>(v.size())}; }

  bool ill_conditioned(const host_vector& sigma, index_t k) const {
    const double ratio = sigma(k - 1) / sigma(0);
    return ratio * ratio < std::sqrt(std::numeric_limits<double>::epsilon());
  }

  host_vector column_sum(execution& exec) const {
    const host_matrix ones = host_matrix::Ones(data_.columns, 1);
    return Backend::to_host(exec, Backend::multiply(exec, data_.parts, ones)).col(0).template cast<double>();
  }

  exact_svd params_;
  index_t dimension_;
  std::string block_;
  detail::snapshots<Backend, Work> data_;
};

}  // namespace ogpsa
