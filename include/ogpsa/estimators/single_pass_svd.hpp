#pragma once
/// \file
/// Top-k left singular vectors from a single pass over the reference snapshots, which are not kept.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "ogpsa/backend.hpp"
#include "ogpsa/cpu/detail/gemm.hpp"
#include "ogpsa/detail/dense.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/detail/orthonormalize.hpp"
#include "ogpsa/detail/random.hpp"
#include "ogpsa/detail/spectral.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/family.hpp"
#include "ogpsa/subspace.hpp"

namespace ogpsa {

template <class Backend, class Work>
class single_pass_svd_pass;

/// The single-pass variant of `randomized_svd`, for streams whose snapshots cannot be kept: a
/// Nystrom sketch of A A^T (A = [a_1 ... a_m], d x m), updated as the snapshots arrive
/// (Tropp, Yurtsever, Udell and Cevher, NeurIPS 2017; in the form of Yu, Gu and Li, IJCAI 2017):
///
///     Omega: d x l standard normal, l = min(k + p, d), drawn from `seed`
///     per fed block C:  Y_C = C^T Omega,  H += C Y_C,  R <- R factor of [R; Y_C]
///     so H = A A^T Omega and R^T R = Omega^T A A^T Omega, and A A^T ~ F F^T with F = H R^+
///     U = top-k left singular vectors of F
///
/// F F^T is the Nystrom approximation of A A^T (never larger than A A^T). Guarantee (TYUC17,
/// Thm. 4.1, for l >= k + 2): the expected trace-norm error of its rank-k truncation is at most
/// (1 + k / (l - k - 1)) sum_{j>k} s_j^2, the optimum times that factor. The range of H is that of
/// one power iteration of `randomized_svd`. Strengths are the singular values of F (each at most
/// the exact one) and `captured_energy` is a lower bound of the basis's true captured energy.
/// Directions point along the data (sum_j u_i^T a_j >= 0); those with s_i <= min(d, m) max(eps,
/// 2^-26) s_1 are numerically zero (F's spectrum comes from its Gram matrix, in double).
///
/// Rank per block as `exact_svd` (`detail::choose_rank`): a fixed rank beyond min(d, m) keeps what
/// the block has and reports the shortfall as dropped. An energy threshold still needs `rank`: it
/// caps the choice and sizes the sketch, l = min(rank + p, d), fixed before the first snapshot.
///
/// Deterministic: the same seed and snapshots give a bit-identical basis. Each snapshot is read
/// once, at O(d l) products per column. Omega is generated once per pass in the working type on
/// the backend, a panel of rows at a time (`ogpsa/detail/random.hpp`). Peak memory of a pass,
/// whatever the number of snapshots (w bytes per working-type value; measured in
/// tests/estimators/memory.cpp): Omega, H and the data's column sum, plus the fed block being
/// absorbed (copied into the working type for the products), w d (2 l + 1 + c) for feeds of at most
/// c columns; Omega is released before the basis (d x k) is built.
///
/// Hyper-parameters (type, default, meaning): `include/ogpsa/README.md#single_pass_svd`, the one table
/// of them, checked against this struct by the test `docs.reference_tables`.
struct single_pass_svd {
  static constexpr const char* name = "single_pass_svd";

  index_t rank = 8;
  std::optional<double> energy{};
  index_t oversampling = 10;
  std::uint64_t seed = 0;

  /// \throws invalid_argument for rank < 1, an energy threshold outside (0, 1] or p < 0.
  void validate() const {
    constexpr const char* where = "ogpsa::single_pass_svd::validate";
    detail::validate_rank_selection(rank, energy, where);
    OGPSA_REQUIRE(oversampling >= 0, invalid_argument, where,
                  "oversampling p must be >= 0, got " << oversampling);
  }

  constexpr bool supports(family) const noexcept { return true; }

  template <class Backend, class Work>
  using pass = single_pass_svd_pass<Backend, Work>;
};

/// The work of `single_pass_svd` on one block during one reference pass.
template <class Backend, class Work>
class single_pass_svd_pass {
 public:
  using execution = typename Backend::execution;
  using matrix = typename Backend::template matrix<Work>;

  single_pass_svd_pass(const single_pass_svd& params, index_t dimension, std::string block)
      : params_(params), dimension_(dimension), block_(std::move(block)) {}

  template <class S>
  void feed(execution& exec, detail::matrix_ref<const S, typename Backend::memory_space> columns,
            index_t /*set*/) {
    if (columns_ == 0) start(exec);
    matrix c = Backend::template zeros<Work>(exec, dimension_, columns.cols);
    Backend::copy_into(exec, columns, c, 0);
    const host_matrix y = Backend::gram(exec, c, omega_);  // C^T Omega
    Backend::multiply_add(exec, c, y, sketch_);
    Backend::multiply_add(exec, c, host_matrix::Ones(c.cols(), 1), sum_);
    energy_ += Backend::squared_norm(exec, c);
    columns_ += c.cols();
    host_matrix stacked(r_.rows() + y.rows(), r_.cols());
    stacked << r_, y;
    r_ = detail::host_r(std::move(stacked));
  }

  subspace<Work, Backend> finish(execution& exec) {
    constexpr const char* where = "ogpsa::single_pass_svd::finish";
    OGPSA_REQUIRE(columns_ > 0, state_error, where, "block '" << block_ << "': no reference snapshot was fed");
    const index_t limit = std::min(dimension_, columns_);
    omega_ = matrix{};  // not needed any more: room for the basis
    const host_matrix x = inverse_factor();  // F = H x
    const host_matrix hx = Backend::gram(exec, sketch_, sketch_);
    // Host products on the calling thread: Eigen's would split across threads of its own.
    using cpu::detail::serial_product;
    const detail::spectrum f = detail::gram_spectrum(serial_product(serial_product(x.transpose(), hx), x));
    subspace<Work, Backend> out;
    const index_t k = detail::select_rank(f.values, energy_, params_.rank, params_.energy, limit, eps, out);
    host_matrix w = serial_product(x, f.vectors.leftCols(k));  // U = H w S^-1
    const host_vector sign = detail::orientation(w.transpose() * Backend::gram(exec, sketch_, sum_).col(0),
                                                 f.vectors.leftCols(k));
    for (index_t i = 0; i < k; ++i) w.col(i) *= sign(i) / f.values(i);
    out.basis = Backend::multiply(exec, sketch_, w);
    detail::reorthonormalize<Backend>(exec, out.basis);
    return out;
  }

 private:
  static constexpr double eps = detail::gram_route_eps<Work>;

  void start(execution& exec) {
    const index_t l = std::min(params_.rank + params_.oversampling, dimension_);
    omega_ = Backend::template gaussian<Work>(exec, dimension_, l, params_.seed);
    sketch_ = Backend::template zeros<Work>(exec, dimension_, l);
    sum_ = Backend::template zeros<Work>(exec, dimension_, 1);
    r_ = host_matrix(0, l);
  }

  /// R^+ restricted to R's numerically non-zero directions, as V_R S_R^-1 (F = H R^+ up to a
  /// rotation on the right, which changes neither F's left singular vectors nor its values).
  host_matrix inverse_factor() const {
    const Eigen::JacobiSVD<host_matrix> svd(r_, Eigen::ComputeFullV);
    const index_t kept = detail::numerical_rank(svd.singularValues(), r_.cols(), std::numeric_limits<Work>::epsilon());
    return svd.matrixV().leftCols(kept) * svd.singularValues().head(kept).cwiseInverse().asDiagonal();
  }

  single_pass_svd params_;
  index_t dimension_;
  std::string block_;
  matrix omega_, sketch_, sum_;
  host_matrix r_;
  double energy_ = 0;
  index_t columns_ = 0;
};

}  // namespace ogpsa
