#pragma once
/// \file
/// Exact top-k left singular vectors of all reference snapshots.

#include <cmath>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/QR>
#include <Eigen/SVD>

#include "ogpsa/backend.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/detail/rounds.hpp"
#include "ogpsa/detail/spectral.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/estimator.hpp"
#include "ogpsa/family.hpp"
#include "ogpsa/subspace.hpp"

namespace ogpsa {

template <class Backend, class Work>
class exact_svd_state;

/// Keeps every reference snapshot (the columns fed in a pass, A = [a_1 ... a_m], d x m) and
/// returns the top-k left singular vectors of A, oriented so each points along the data
/// (sum_j u_i^T a_j >= 0, which `conflict_only` relies on).
///
/// Snapshots and the basis are kept in the working type (float, or double for a double basis).
/// Route: the Gram matrix of the short side (A^T A for tall data, A A^T for wide), always
/// accumulated in double, and a symmetric eigen-solver; its error in a direction is about
/// eps_double * (s_1/s_k)^2, so when (s_k/s_1)^2 < sqrt(eps_double) the estimator falls back to Householder QR followed by an
/// SVD of the small triangular factor. Gram-route bases are re-orthonormalized (Cholesky QR; the QR route if that fails).
/// Directions with s_i <= min(d, m) * eps * s_1 are numerically zero: never kept, and reported as
/// dropped when a fixed rank asked for them. Memory: d x m snapshots plus the basis.
///
/// Sharded blocks (`ogpsa/sharding.hpp`, `estimate`): with the target rows split, the m x m Gram
/// matrix A^T A is summed across ranks and each rank computes its own rows of U, the QR route
/// becoming TSQR (every rank's R, one slot per rank, summed into one stack and factored again);
/// with the columns split, A A^T (d x d) and the column sum that orients U are summed and every
/// rank gets all of U. At most two rounds of sums per refresh, shared by all blocks.
///
/// | hyper-parameter | type                  | default | meaning                                    |
/// |-----------------|-----------------------|---------|--------------------------------------------|
/// | `rank`          | index_t               | 8       | fixed rank; with `energy`, the largest rank |
/// | `energy`        | optional<double>      | unset   | smallest k with captured energy >= this, in (0, 1] |
struct exact_svd {
  static constexpr const char* name = "exact_svd";

  index_t rank = 8;
  std::optional<double> energy{};

  /// \throws invalid_argument for rank < 1 or an energy threshold outside (0, 1].
  void validate() const { detail::validate_rank_selection(rank, energy, "ogpsa::exact_svd::validate"); }

  constexpr bool supports(family) const noexcept { return true; }

  template <class Backend, class Work>
  using state = exact_svd_state<Backend, Work>;
};

/// Per-block state of `exact_svd` for one reference pass.
template <class Backend, class Work>
class exact_svd_state {
 public:
  using execution = typename Backend::execution;
  using matrix = typename Backend::template matrix<Work>;

  exact_svd_state(const exact_svd& params, index_t dimension, std::string block)
      : params_(params), dimension_(dimension), block_(std::move(block)) {}

  template <class S>
  void feed(execution& exec, detail::matrix_ref<const S, typename Backend::memory_space> columns,
            index_t /*set*/) {
    matrix chunk = Backend::template zeros<Work>(exec, dimension_, columns.cols);
    Backend::copy_into(exec, columns, chunk, 0);
    columns_ += columns.cols;
    chunks_.push_back(std::move(chunk));
  }

  subspace<Work, Backend> finish(execution& exec) { return detail::run_locally(estimate(exec, {})); }

  /// The estimate, awaiting sums across ranks when the block is sharded: with the target rows
  /// split, A^T A is a sum of the ranks' parts (the tall route); with the columns split, A A^T is
  /// (the wide route). `layout.split == none`: the short side's route, nothing awaited.
  detail::rounds<subspace<Work, Backend>> estimate(execution& exec, shard_layout layout) {
    OGPSA_REQUIRE(columns_ > 0 || layout.split == target_split::columns, state_error,
                  "ogpsa::exact_svd::finish", "block '" << block_ << "': no reference snapshot was fed");
    const bool tall_route = layout.split == target_split::rows ||
                            (layout.split == target_split::none && dimension_ > columns_);
    return tall_route ? tall(exec, layout) : wide(exec, layout);
  }

 private:
  using result = subspace<Work, Backend>;
  static constexpr double work_eps = std::numeric_limits<Work>::epsilon();

  /// Eigen-decomposition of A^T A (m x m); U = A V S^-1, re-orthonormalized (Cholesky QR). With
  /// the rows of A split, each rank computes its rows of U from its rows of A.
  detail::rounds<result> tall(execution& exec, shard_layout layout) {
    const bool sharded = layout.split == target_split::rows;
    host_matrix g = block_gram(exec);
    double dimension = static_cast<double>(dimension_);
    if (sharded) co_await detail::summed(span_of(g), std::span<double>(&dimension, 1));
    const index_t limit = std::min(static_cast<index_t>(dimension), columns_);
    const detail::spectrum s = detail::gram_spectrum(g);
    result out;
    const index_t k = select(s.values, g.trace(), limit, out);
    if (k == 0) {
      out.basis = Backend::template zeros<Work>(exec, dimension_, 0);
      co_return out;
    }
    if (!ill_conditioned(s.values, k)) {
      host_matrix v = s.vectors.leftCols(k);
      const host_vector sign = detail::orientation(v.colwise().sum().transpose(), v);
      for (index_t i = 0; i < k; ++i) v.col(i) *= sign(i) / s.values(i);
      out.basis = multiply_chunks(exec, v);
      host_matrix uu = Backend::gram(exec, out.basis, out.basis);
      if (sharded) co_await detail::summed(span_of(uu));
      Eigen::LLT<host_matrix> llt(uu);
      if (llt.info() == Eigen::Success) {  // else the QR route below
        out.basis = Backend::multiply(exec, out.basis, llt.matrixU().solve(host_matrix::Identity(k, k)));
        co_return out;
      }
    }
    // Householder QR of A, then an SVD of the small triangular factor. Split rows: each rank
    // factors its rows, A_r = Q_r R_r, and the stacked R_r (one slot per rank, summed into place)
    // are factored again, [R_1; ...; R_p] = Q_s R (TSQR), so that A = diag(Q_r) Q_s R.
    auto factors = Backend::thin_qr(exec, Backend::concatenate(exec, chunks_));
    matrix q = std::move(factors.first);
    host_matrix r = std::move(factors.second);
    if (sharded) {
      host_matrix stack = host_matrix::Zero(layout.position.ranks * columns_, columns_);
      const index_t slot = layout.position.rank * columns_;
      stack.middleRows(slot, r.rows()) = r;
      co_await detail::summed(span_of(stack));
      const std::pair<host_matrix, host_matrix> stacked = host_qr(stack);
      q = Backend::multiply(exec, q, stacked.first.middleRows(slot, r.rows()));
      r = stacked.second;
    }
    Eigen::JacobiSVD<host_matrix> svd(r, Eigen::ComputeFullU);
    out = {};
    const index_t kept = select(svd.singularValues(), g.trace(), limit, out);
    host_matrix ur = svd.matrixU().leftCols(kept);
    // A^T U = R^T U_R: the data's coefficients on each direction.
    const host_vector sign = detail::orientation((r.transpose() * ur).colwise().sum().transpose(), ur);
    out.basis = Backend::multiply(exec, q, ur * sign.asDiagonal());
    co_return out;
  }

  /// Eigen-decomposition of A A^T (d x d) gives U directly; with the columns of A split, A A^T
  /// and the column sum that orients U are sums over the ranks, and every rank gets all of U.
  detail::rounds<result> wide(execution& exec, shard_layout layout) {
    const bool sharded = layout.split == target_split::columns;
    host_matrix g = host_matrix::Zero(dimension_, dimension_);
    for (const matrix& c : chunks_) g += Backend::row_gram(exec, c);
    host_vector along = column_sum(exec);
    double columns = static_cast<double>(columns_);
    if (sharded) co_await detail::summed(span_of(g), span_of(along), std::span<double>(&columns, 1));
    OGPSA_REQUIRE(columns > 0, state_error, "ogpsa::exact_svd::finish",
                  "block '" << block_ << "': no reference snapshot was fed");
    const index_t limit = std::min(dimension_, static_cast<index_t>(columns));
    const detail::spectrum s = detail::gram_spectrum(g);
    result out;
    const index_t k = select(s.values, g.trace(), limit, out);
    if (k == 0 || !ill_conditioned(s.values, k)) co_return with_basis(exec, s.vectors.leftCols(k), along, out);
    // A^T = Q R, so A = R^T Q^T and A's left singular vectors are R's right singular vectors.
    // Split columns are split rows of A^T: only R is needed, so TSQR's second factor suffices.
    host_matrix r = Backend::thin_qr(exec, Backend::transpose(exec, Backend::concatenate(exec, chunks_))).second;
    if (sharded) {
      host_matrix stack = host_matrix::Zero(layout.position.ranks * dimension_, dimension_);
      stack.middleRows(layout.position.rank * dimension_, r.rows()) = r;
      co_await detail::summed(span_of(stack));
      r = host_qr(stack).second;
    }
    Eigen::JacobiSVD<host_matrix> svd(r, Eigen::ComputeFullV);
    out = {};
    const index_t kept = select(svd.singularValues(), g.trace(), limit, out);
    co_return with_basis(exec, svd.matrixV().leftCols(kept), along, out);
  }

  result with_basis(execution& exec, host_matrix u, const host_vector& along, result& out) {
    const host_vector sign = detail::orientation(u.transpose() * along, u);
    u = u * sign.asDiagonal();
    out.basis = Backend::from_host(exec, Eigen::Matrix<Work, Eigen::Dynamic, Eigen::Dynamic>(u.template cast<Work>()));
    return std::move(out);
  }

  /// Chooses k, records strengths, energy and dropped directions; `limit` is min(d, m) of all of A.
  index_t select(const host_vector& sigma, double total, index_t limit, result& out) const {
    const index_t usable = detail::numerical_rank(sigma, limit, work_eps);
    const auto choice = detail::choose_rank(sigma, total, params_.rank, params_.energy, limit,
                                            usable, "ogpsa::exact_svd::finish", block_);
    out.strengths.assign(sigma.data(), sigma.data() + choice.kept);
    out.captured_energy = detail::energy_fraction(sigma, choice.kept, total);
    out.dropped = choice.dropped;
    return choice.kept;
  }

  bool ill_conditioned(const host_vector& sigma, index_t k) const {
    const double ratio = sigma(k - 1) / sigma(0);
    return ratio * ratio < std::sqrt(std::numeric_limits<double>::epsilon());
  }

  static std::span<double> span_of(host_matrix& m) { return {m.data(), static_cast<std::size_t>(m.size())}; }
  static std::span<double> span_of(host_vector& v) { return {v.data(), static_cast<std::size_t>(v.size())}; }

  /// Q (rows x cols) and R (cols x cols) of a tall host matrix.
  static std::pair<host_matrix, host_matrix> host_qr(const host_matrix& a) {
    const Eigen::HouseholderQR<host_matrix> qr(a);
    host_matrix q = qr.householderQ() * host_matrix::Identity(a.rows(), a.cols());
    host_matrix r = qr.matrixQR().topRows(a.cols()).template triangularView<Eigen::Upper>();
    return {std::move(q), std::move(r)};
  }

  host_matrix block_gram(execution& exec) const {
    host_matrix g(columns_, columns_);
    index_t row = 0;
    for (std::size_t i = 0; i < chunks_.size(); ++i) {
      index_t col = row;
      for (std::size_t j = i; j < chunks_.size(); ++j) {
        const host_matrix b = Backend::gram(exec, chunks_[i], chunks_[j]);
        g.block(row, col, b.rows(), b.cols()) = b;
        g.block(col, row, b.cols(), b.rows()) = b.transpose();
        col += chunks_[j].cols();
      }
      row += chunks_[i].cols();
    }
    return g;
  }

  /// A X for X stacked to match the chunks: sum over chunks of chunk_c X_c.
  matrix multiply_chunks(execution& exec, const host_matrix& x) const {
    matrix u = Backend::template zeros<Work>(exec, dimension_, x.cols());
    index_t row = 0;
    for (const matrix& c : chunks_) {
      Backend::multiply_add(exec, c, x.middleRows(row, c.cols()), u);
      row += c.cols();
    }
    return u;
  }

  host_vector column_sum(execution& exec) const {
    host_vector s = host_vector::Zero(dimension_);
    for (const matrix& c : chunks_)
      s += Backend::to_host(exec, Backend::multiply(exec, c, host_matrix::Ones(c.cols(), 1)))
               .col(0)
               .template cast<double>();
    return s;
  }

  exact_svd params_;
  index_t dimension_;
  std::string block_;
  std::vector<matrix> chunks_;
  index_t columns_ = 0;
};

}  // namespace ogpsa
