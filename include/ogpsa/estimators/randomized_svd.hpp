#pragma once
/// \file
/// Top-k left singular vectors of the reference snapshots by randomized subspace iteration.

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ogpsa/backend.hpp"
#include "ogpsa/detail/dense.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/detail/orthonormalize.hpp"
#include "ogpsa/detail/random.hpp"
#include "ogpsa/detail/rounds.hpp"
#include "ogpsa/detail/snapshots.hpp"
#include "ogpsa/detail/spectral.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/estimator.hpp"
#include "ogpsa/family.hpp"
#include "ogpsa/subspace.hpp"

namespace ogpsa {

template <class Backend, class Work>
class randomized_svd_pass;

/// The randomized range finder with subspace iteration of Halko, Martinsson and Tropp (SIAM Review
/// 53(2), 2011, Algorithms 4.4 and 5.1) over every snapshot of a pass (A = [a_1 ... a_m], d x m):
///
///     Omega: m x l standard normal, l = min(k + p, d, m), drawn from `seed`
///     Q = orth(A Omega); q times: Q = orth(A orth(A^T Q))     (re-orthonormalized every half step)
///     B = Q^T A (l x m); B = U_B S V_B^T;  U = Q U_B[:, :k]
///
/// Guarantee (HMT Cor. 10.10, p >= 2): E |A - Q Q^T A|_2 <= [(1 + sqrt(k / (p - 1))) s_{k+1}^(2q+1)
/// + (e sqrt(k + p) / p) (sum_{j>k} s_j^(2(2q+1)))^(1/2)]^(1/(2q+1)); the angle between U and the
/// exact top-k directions shrinks like (s_{l+1} / s_k)^(2q+1). The strengths are the singular values
/// of B (each at most the exact one) and `captured_energy` is exact for the returned basis
/// (|U^T A|_F^2 / |A|_F^2). Directions point along the data (sum_j u_i^T a_j >= 0).
///
/// Rank per block as `exact_svd` (`detail::choose_rank`): a fixed rank beyond min(d, m) keeps what
/// the block has and reports the shortfall as dropped. An energy threshold still needs `rank`: it
/// caps the choice and sizes the sample, l = min(rank + p, d, m), so there is no uncapped energy
/// selection (use `exact_svd{.energy = ...}` for that).
///
/// Deterministic: the same seed and snapshots give a bit-identical basis. Keeps every snapshot, like
/// `exact_svd`, and reads them 2q + 2 times; cost O(d m l (q + 1)) in products on the backend,
/// against O(d m^2) for the exact route. `single_pass_svd` is the variant that keeps none. Peak
/// memory of a pass (w bytes per working-type value; measured in tests/estimators/memory.cpp): the
/// snapshots, one d x l sample at a time (each Q is released before the product that replaces it)
/// and the basis, w d (m + l + k), plus O(m l) doubles on the host (Omega is m x l).
///
/// Sharded blocks (`estimate`): every sum across ranks is m x l, l x l or d x l, never d x d or
/// m x m. With the target rows split, 3q + 4 rounds per refresh: d and |A|_F^2, then per
/// orthonormalization of a Q two l x l Gram matrices (CholeskyQR2; TSQR's ranks x l^2 stack takes
/// the second's place when the first pass declines), per iteration A^T Q (m x l); 2 + (q + 1)
/// (2 l^2 + m l) values per block. With the target columns split (`right` blocks sharded by rows,
/// the FSDP case): q + 3 rounds, m and |A|_F^2, q + 1 sums of A A^T Q (d x l), then B B^T and B 1
/// (l x l, l); 2 + (q + 1) d l + l^2 + l values per block, and per rank (16 + w) d l bytes besides
/// the snapshots during a round (the d x l sum, the reducer's packed copy, Q; measured in
/// tests/estimators/memory.cpp). There the strengths come from B B^T's eigenvalues, so directions
/// with s_i <= min(d, m) max(eps, 2^-26) s_1 are numerically zero. The same seed on every rank.
///
/// Hyper-parameters (type, default, meaning): `include/ogpsa/README.md#randomized_svd`, the one table
/// of them, checked against this struct by the test `docs.reference_tables`.
struct randomized_svd {
  static constexpr const char* name = "randomized_svd";

  index_t rank = 8;
  std::optional<double> energy{};
  index_t oversampling = 10;
  index_t power_iterations = 2;
  std::uint64_t seed = 0;

  /// \throws invalid_argument for rank < 1, an energy threshold outside (0, 1], p < 0 or q < 0.
  void validate() const {
    constexpr const char* where = "ogpsa::randomized_svd::validate";
    detail::validate_rank_selection(rank, energy, where);
    OGPSA_REQUIRE(oversampling >= 0, invalid_argument, where,
                  "oversampling p must be >= 0, got " << oversampling);
    OGPSA_REQUIRE(power_iterations >= 0, invalid_argument, where,
                  "power_iterations q must be >= 0, got " << power_iterations);
  }

  constexpr bool supports(family) const noexcept { return true; }

  template <class Backend, class Work>
  using pass = randomized_svd_pass<Backend, Work>;
};

/// The work of `randomized_svd` on one block during one reference pass.
template <class Backend, class Work>
class randomized_svd_pass {
 public:
  using execution = typename Backend::execution;
  using matrix = typename Backend::template matrix<Work>;

  randomized_svd_pass(const randomized_svd& params, index_t dimension, std::string block)
      : params_(params), dimension_(dimension), block_(std::move(block)) {}

  template <class S>
  void feed(execution& exec, detail::matrix_ref<const S, typename Backend::memory_space> columns,
            index_t /*set*/) {
    energy_ += Backend::squared_norm(exec, data_.add(exec, columns));
  }

  subspace<Work, Backend> finish(execution& exec) {
    require_snapshots(data_.columns);
    const matrix q = range(exec);
    return from_sample(exec, q, Backend::gram(exec, data_.parts, q), energy_, limit());
  }

  /// The estimate of a sharded block, awaiting sums across ranks (`ogpsa/sharding.hpp`); every sum
  /// is m x l, l x l or d x l, never d x d or m x m. Split target rows (each rank holds rows of A,
  /// every snapshot): the same iteration as `finish`, Omega (m x l) the same on every rank, each Q
  /// orthonormalized across ranks by CholeskyQR2 on its summed l x l Gram matrices (TSQR of the
  /// ranks' l x l R factors when it is too ill-conditioned), A^T Q and B^T = A^T Q summed (m x l).
  /// Split target columns (each rank holds whole snapshots): the range finder applied to A A^T, a
  /// sum of the ranks' A_r A_r^T: Q = orth(A A^T Omega) with Omega d x l, then q more times
  /// Q = orth(A A^T Q) (each a d x l sum), and U_B from B B^T = Q^T A A^T Q (l x l summed), so the
  /// angles shrink like (s_{l+1} / s_k)^(2q+2). Unsplit: `finish`.
  detail::rounds<subspace<Work, Backend>> estimate(execution& exec, target_shard shard) {
    if (shard.split == target_split::rows) return split_rows(exec, shard.position);
    if (shard.split == target_split::columns) return split_columns(exec);
    return unsplit(exec);
  }

 private:
  using result = subspace<Work, Backend>;

  index_t limit() const { return std::min(dimension_, data_.columns); }
  index_t sample_width(index_t limit) const { return std::min(params_.rank + params_.oversampling, limit); }

  void require_snapshots(index_t columns) const {
    OGPSA_REQUIRE(columns > 0, state_error, "ogpsa::randomized_svd::finish",
                  "block '" << block_ << "': no reference snapshot was fed");
  }

  /// An orthonormal basis Q (d x l) of (A A^T)^q A Omega. One d x l matrix at a time: each Q is
  /// released before the product that replaces it (only its small m x l image A^T Q is needed).
  matrix range(execution& exec) const {
    const host_matrix omega = detail::gaussian_matrix(data_.columns, sample_width(limit()), params_.seed);
    matrix q = detail::orthonormal_basis<Backend>(exec, Backend::multiply(exec, data_.parts, omega));
    for (index_t i = 0; i < params_.power_iterations; ++i) {
      const host_matrix z = detail::host_qr(Backend::gram(exec, data_.parts, q)).first;  // orth(A^T Q), m x l
      q = matrix{};
      q = detail::orthonormal_basis<Backend>(exec, Backend::multiply(exec, data_.parts, z));
    }
    return q;
  }

  /// The basis from the sample Q and B^T = A^T Q (m x l): B = U_B S V_B^T, U = Q U_B[:, :k], each
  /// direction pointing along the data (B 1 = Q^T A 1: U_B^T B 1 holds its summed coefficients).
  result from_sample(execution& exec, const matrix& q, const host_matrix& bt, double energy, index_t limit) const {
    const Eigen::JacobiSVD<host_matrix> svd(bt, Eigen::ComputeThinV);
    result out;
    const index_t k = detail::select_rank(svd.singularValues(), energy, params_.rank, params_.energy, limit,
                                          std::numeric_limits<Work>::epsilon(), out);
    const host_matrix ub = svd.matrixV().leftCols(k);  // B^T = V_t S U_t^T: B's left vectors
    const host_vector sign = detail::orientation(ub.transpose() * bt.colwise().sum().transpose(), ub);
    out.basis = Backend::multiply(exec, q, ub * sign.asDiagonal());
    return out;
  }

  // ---- sharded blocks -----------------------------------------------------------------------------

  detail::rounds<result> unsplit(execution& exec) { co_return finish(exec); }

  /// Rows of A split: d and |A|_F^2 are sums; this rank computes its rows of every Q and of U.
  detail::rounds<result> split_rows(execution& exec, rank_position position) {
    require_snapshots(data_.columns);  // every rank holds every snapshot's piece
    std::array<double, 2> whole{static_cast<double>(dimension_), energy_};
    co_await detail::summed(std::span<double>(whole));
    const index_t limit = std::min(static_cast<index_t>(whole[0]), data_.columns);
    const host_matrix omega = detail::gaussian_matrix(data_.columns, sample_width(limit), params_.seed);
    matrix q = Backend::multiply(exec, data_.parts, omega);
    for (index_t i = 0;; ++i) {
      detail::rounds<matrix> orthonormal = orthonormal_rows(exec, std::move(q), position);
      while (detail::advance(orthonormal)) co_await detail::summed(orthonormal.request());
      q = orthonormal.result();
      host_matrix z = Backend::gram(exec, data_.parts, q);  // A^T Q, m x l: a sum over ranks
      co_await detail::summed(span_of(z));
      if (i == params_.power_iterations) co_return from_sample(exec, q, z, whole[1], limit);
      q = matrix{};
      q = Backend::multiply(exec, data_.parts, detail::host_qr(std::move(z)).first);
    }
  }

  /// This rank's rows of an orthonormal basis of the range of y, whose rows are split across ranks:
  /// two Cholesky-QR passes with the summed Gram matrix y^T y (l x l), or, when a pass declines,
  /// TSQR: each rank factors its rows in place, the R factors (one l x l slot per rank) are summed
  /// into one stack and factored again, [R_1; ...; R_p] = Q_s R, and this rank's rows are
  /// Q_r (Q_s's slot rows). Every rank takes the same branch: each decision is a function of sums.
  detail::rounds<matrix> orthonormal_rows(execution& exec, matrix y, rank_position position) {
    for (int pass = 0; pass < 2; ++pass) {
      host_matrix g = Backend::gram(exec, y, y);
      co_await detail::summed(span_of(g));
      const auto inverse = detail::cholesky_inverse_factor<Work>(g);
      if (!inverse) break;
      Backend::multiply_in_place(exec, y, *inverse);
      if (pass == 1) co_return std::move(y);
    }
    const index_t l = y.cols(), slot = position.rank * l;
    std::vector<matrix> rows;
    rows.push_back(std::move(y));
    const auto factors = Backend::householder_qr(exec, rows);
    host_matrix stack = host_matrix::Zero(position.ranks * l, l);
    stack.middleRows(slot, factors.r.rows()) = factors.r;
    co_await detail::summed(span_of(stack));
    const host_matrix qs = detail::host_qr(std::move(stack)).first;
    co_return Backend::apply_q(exec, rows, factors, qs.middleRows(slot, factors.r.rows()));
  }

  /// Columns of A split (a rank may hold none): m and |A|_F^2 are sums, every rank gets all of U.
  detail::rounds<result> split_columns(execution& exec) {
    std::array<double, 2> whole{static_cast<double>(data_.columns), energy_};
    co_await detail::summed(std::span<double>(whole));
    const index_t columns = static_cast<index_t>(whole[0]);
    require_snapshots(columns);
    const index_t limit = std::min(dimension_, columns);
    matrix q = Backend::template gaussian<Work>(exec, dimension_, sample_width(limit), params_.seed);
    for (index_t i = 0; i <= params_.power_iterations; ++i) {
      host_matrix y = row_gram_times(exec, q);  // A A^T Q, d x l: a sum over ranks
      co_await detail::summed(span_of(y));
      q = matrix{};
      Eigen::Matrix<Work, Eigen::Dynamic, Eigen::Dynamic> summed = y.template cast<Work>();
      y = host_matrix{};
      q = detail::orthonormal_basis<Backend>(exec, Backend::from_host(exec, summed));
    }
    const host_matrix bt = data_.columns > 0 ? Backend::gram(exec, data_.parts, q) : host_matrix(0, q.cols());
    host_matrix bbt = detail::host_gram(bt);                  // B B^T, l x l
    host_vector along = bt.colwise().sum().transpose();      // B 1 = Q^T A 1
    co_await detail::summed(span_of(bbt), span_of(along));
    const detail::spectrum s = detail::gram_spectrum(bbt);
    result out;
    const index_t k = detail::select_rank(s.values, whole[1], params_.rank, params_.energy, limit,
                                          detail::gram_route_eps<Work>, out);
    const host_matrix ub = s.vectors.leftCols(k);
    const host_vector sign = detail::orientation(ub.transpose() * along, ub);
    out.basis = Backend::multiply(exec, q, ub * sign.asDiagonal());
    co_return out;
  }

  /// This rank's part of A A^T x, A_r (A_r^T x), on the host in double.
  host_matrix row_gram_times(execution& exec, const matrix& x) const {
    if (data_.columns == 0) return host_matrix::Zero(dimension_, x.cols());
    const auto y = Backend::to_host(exec, Backend::multiply(exec, data_.parts, Backend::gram(exec, data_.parts, x)));
    return y.template cast<double>();
  }

  static std::span<double> span_of(host_matrix& m) { return {m.data(), static_cast<std::size_t>(m.size())}; }
  static std::span<double> span_of(host_vector& v) { return {v.data(), static_cast<std::size_t>(v.size())}; }

  randomized_svd params_;
  index_t dimension_;
  std::string block_;
  detail::snapshots<Backend, Work> data_;
  double energy_ = 0;  ///< |A|_F^2, accumulated in double
};

}  // namespace ogpsa
