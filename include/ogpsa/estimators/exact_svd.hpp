#pragma once
/// \file
/// Exact top-k left singular vectors of all reference snapshots.

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/SVD>

#include "ogpsa/backend.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/detail/spectral.hpp"
#include "ogpsa/error.hpp"
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
/// SVD of the small triangular factor. Gram-route bases are re-orthonormalized (Cholesky QR).
/// Directions with s_i <= min(d, m) * eps * s_1 are numerically zero: never kept, and reported as
/// dropped when a fixed rank asked for them. Memory: d x m snapshots plus the basis.
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

  subspace<Work, Backend> finish(execution& exec) {
    OGPSA_REQUIRE(columns_ > 0, state_error, "ogpsa::exact_svd::finish",
                  "block '" << block_ << "': no reference snapshot was fed");
    return dimension_ <= columns_ ? wide(exec) : tall(exec);
  }

 private:
  static constexpr double work_eps = std::numeric_limits<Work>::epsilon();

  index_t limit() const { return std::min(dimension_, columns_); }

  /// d > m: eigen-decomposition of A^T A; U = A V S^-1.
  subspace<Work, Backend> tall(execution& exec) {
    const host_matrix g = block_gram(exec);
    const detail::spectrum s = detail::gram_spectrum(g);
    subspace<Work, Backend> out;
    const index_t k = select(s.values, g.trace(), out);
    if (k > 0 && ill_conditioned(s.values, k)) return tall_by_qr(exec, g.trace(), out);
    host_matrix v = s.vectors.leftCols(k);
    const host_vector sign = detail::orientation(v.colwise().sum().transpose(), v);
    for (index_t i = 0; i < k; ++i) v.col(i) *= sign(i) / s.values(i);
    out.basis = reorthonormalize(exec, multiply_chunks(exec, v));
    return out;
  }

  subspace<Work, Backend> tall_by_qr(execution& exec, double total, subspace<Work, Backend>& out) {
    auto [q, r] = Backend::thin_qr(exec, Backend::concatenate(exec, chunks_));
    Eigen::JacobiSVD<host_matrix> svd(r, Eigen::ComputeFullU);
    out = {};
    const index_t k = select(svd.singularValues(), total, out);
    host_matrix ur = svd.matrixU().leftCols(k);
    // A^T U = R^T U_R: the data's coefficients on each direction.
    const host_vector sign =
        detail::orientation((r.transpose() * ur).colwise().sum().transpose(), ur);
    ur = ur * sign.asDiagonal();
    out.basis = Backend::multiply(exec, q, ur);
    return out;
  }

  /// d <= m: eigen-decomposition of A A^T gives U directly.
  subspace<Work, Backend> wide(execution& exec) {
    host_matrix g = host_matrix::Zero(dimension_, dimension_);
    for (const matrix& c : chunks_) g += Backend::row_gram(exec, c);
    const detail::spectrum s = detail::gram_spectrum(g);
    subspace<Work, Backend> out;
    const index_t k = select(s.values, g.trace(), out);
    if (k > 0 && ill_conditioned(s.values, k)) return wide_by_qr(exec, g.trace(), out);
    return with_basis(exec, s.vectors.leftCols(k), out);
  }

  /// A^T = Q R, so A = R^T Q^T and A's left singular vectors are R's right singular vectors.
  subspace<Work, Backend> wide_by_qr(execution& exec, double total, subspace<Work, Backend>& out) {
    auto qr = Backend::thin_qr(exec, Backend::transpose(exec, Backend::concatenate(exec, chunks_)));
    Eigen::JacobiSVD<host_matrix> svd(qr.second, Eigen::ComputeFullV);
    out = {};
    const index_t k = select(svd.singularValues(), total, out);
    return with_basis(exec, svd.matrixV().leftCols(k), out);
  }

  subspace<Work, Backend> with_basis(execution& exec, host_matrix u, subspace<Work, Backend>& out) {
    const host_vector sign = detail::orientation(u.transpose() * column_sum(exec), u);
    u = u * sign.asDiagonal();
    out.basis = Backend::from_host(exec, Eigen::Matrix<Work, Eigen::Dynamic, Eigen::Dynamic>(u.template cast<Work>()));
    return out;
  }

  /// Chooses k, records strengths, energy and dropped directions.
  index_t select(const host_vector& sigma, double total, subspace<Work, Backend>& out) const {
    const index_t usable = detail::numerical_rank(sigma, limit(), work_eps);
    const auto choice = detail::choose_rank(sigma, total, params_.rank, params_.energy, limit(),
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

  /// One Cholesky-QR pass: U <- U L^-T with L L^T = U^T U. The Gram-route basis is already
  /// orthonormal to within its rounding, so one pass restores orthonormality to working
  /// precision; Gram-Schmidt takes over if the Cholesky factorization fails.
  matrix reorthonormalize(execution& exec, matrix u) const {
    if (u.cols() == 0) return u;
    Eigen::LLT<host_matrix> llt(Backend::gram(exec, u, u));
    if (llt.info() != Eigen::Success) {
      Backend::gram_schmidt(exec, u, 0.0, 0.0);
      return u;
    }
    const host_matrix l_inv_t = llt.matrixU().solve(host_matrix::Identity(u.cols(), u.cols()));
    return Backend::multiply(exec, u, l_inv_t);
  }

  exact_svd params_;
  index_t dimension_;
  std::string block_;
  std::vector<matrix> chunks_;
  index_t columns_ = 0;
};

}  // namespace ogpsa
