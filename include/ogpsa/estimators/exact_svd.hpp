#pragma once
/// \file
/// Exact top-k left singular vectors of all reference snapshots.

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include <Eigen/SVD>

#include "ogpsa/backend.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/detail/snapshots.hpp"
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
    data_.add(exec, columns);
  }

  subspace<Work, Backend> finish(execution& exec) {
    OGPSA_REQUIRE(data_.columns > 0, state_error, "ogpsa::exact_svd::finish",
                  "block '" << block_ << "': no reference snapshot was fed");
    return dimension_ <= data_.columns ? wide(exec) : tall(exec);
  }

 private:
  static constexpr double work_eps = std::numeric_limits<Work>::epsilon();

  index_t limit() const { return std::min(dimension_, data_.columns); }

  /// d > m: eigen-decomposition of A^T A; U = A V S^-1.
  subspace<Work, Backend> tall(execution& exec) {
    const host_matrix g = Backend::gram(exec, data_.parts);
    const detail::spectrum s = detail::gram_spectrum(g);
    subspace<Work, Backend> out;
    const index_t k = select(s.values, g.trace(), out);
    if (k > 0 && ill_conditioned(s.values, k)) return tall_by_qr(exec, g.trace(), out);
    host_matrix v = s.vectors.leftCols(k);
    const host_vector sign = detail::orientation(v.colwise().sum().transpose(), v);
    for (index_t i = 0; i < k; ++i) v.col(i) *= sign(i) / s.values(i);
    out.basis = Backend::multiply(exec, data_.parts, v);
    detail::reorthonormalize<Backend>(exec, out.basis);
    return out;
  }

  subspace<Work, Backend> tall_by_qr(execution& exec, double total, subspace<Work, Backend>& out) {
    auto [q, r] = Backend::thin_qr(exec, Backend::concatenate(exec, data_.parts));
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
    for (const matrix& c : data_.parts) g += Backend::row_gram(exec, c);
    const detail::spectrum s = detail::gram_spectrum(g);
    subspace<Work, Backend> out;
    const index_t k = select(s.values, g.trace(), out);
    if (k > 0 && ill_conditioned(s.values, k)) return wide_by_qr(exec, g.trace(), out);
    return with_basis(exec, s.vectors.leftCols(k), out);
  }

  /// A^T = Q R, so A = R^T Q^T and A's left singular vectors are R's right singular vectors.
  subspace<Work, Backend> wide_by_qr(execution& exec, double total, subspace<Work, Backend>& out) {
    auto qr = Backend::thin_qr(exec, Backend::transpose(exec, Backend::concatenate(exec, data_.parts)));
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
    return detail::select_rank(sigma, total, params_.rank, params_.energy, limit(), work_eps,
                               "ogpsa::exact_svd::finish", block_, out);
  }

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
