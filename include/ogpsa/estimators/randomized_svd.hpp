#pragma once
/// \file
/// Top-k left singular vectors of the reference snapshots by randomized subspace iteration.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include <Eigen/SVD>

#include "ogpsa/backend.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/detail/random.hpp"
#include "ogpsa/detail/snapshots.hpp"
#include "ogpsa/detail/spectral.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/family.hpp"
#include "ogpsa/subspace.hpp"

namespace ogpsa {

template <class Backend, class Work>
class randomized_svd_state;

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
/// | hyper-parameter    | type               | default | meaning                                           |
/// |--------------------|--------------------|---------|---------------------------------------------------|
/// | `rank`             | index_t            | 8       | fixed rank k; with `energy`, the largest rank (it sizes the sketch) |
/// | `energy`           | optional<double>   | unset   | smallest k with captured energy >= this, in (0, 1] |
/// | `oversampling`     | index_t            | 10      | p, extra sample directions (l = k + p)            |
/// | `power_iterations` | index_t            | 2       | q, passes of subspace iteration                    |
/// | `seed`             | std::uint64_t      | 0       | seed of the Gaussian test matrix                   |
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
  using state = randomized_svd_state<Backend, Work>;
};

/// Per-block state of `randomized_svd` for one reference pass.
template <class Backend, class Work>
class randomized_svd_state {
 public:
  using execution = typename Backend::execution;
  using matrix = typename Backend::template matrix<Work>;

  randomized_svd_state(const randomized_svd& params, index_t dimension, std::string block)
      : params_(params), dimension_(dimension), block_(std::move(block)) {}

  template <class S>
  void feed(execution& exec, detail::matrix_ref<const S, typename Backend::memory_space> columns,
            index_t /*set*/) {
    energy_ += Backend::squared_norm(exec, data_.add(exec, columns));
  }

  subspace<Work, Backend> finish(execution& exec) {
    OGPSA_REQUIRE(data_.columns > 0, state_error, "ogpsa::randomized_svd::finish",
                  "block '" << block_ << "': no reference snapshot was fed");
    const matrix q = range(exec);
    const host_matrix bt = Backend::gram(exec, data_.parts, q);  // B^T = A^T Q, m x l
    const Eigen::JacobiSVD<host_matrix> svd(bt, Eigen::ComputeThinV);
    subspace<Work, Backend> out;
    const index_t k = detail::select_rank(svd.singularValues(), energy_, params_.rank, params_.energy, limit(),
                                          std::numeric_limits<Work>::epsilon(), out);
    const host_matrix ub = svd.matrixV().leftCols(k);  // B = V_t S U_t^T: B's left vectors
    // B 1 = Q^T A 1, so U_B^T B 1 holds each direction's summed coefficients on the data.
    const host_vector sign = detail::orientation(ub.transpose() * bt.colwise().sum().transpose(), ub);
    out.basis = Backend::multiply(exec, q, ub * sign.asDiagonal());
    return out;
  }

 private:
  index_t limit() const { return std::min(dimension_, data_.columns); }

  /// An orthonormal basis Q (d x l) of (A A^T)^q A Omega. One d x l matrix at a time: each Q is
  /// released before the product that replaces it (only its small m x l image A^T Q is needed).
  matrix range(execution& exec) const {
    const index_t l = std::min(params_.rank + params_.oversampling, limit());
    const host_matrix omega = detail::gaussian_matrix(data_.columns, l, params_.seed);
    matrix q = detail::orthonormal_basis<Backend>(exec, Backend::multiply(exec, data_.parts, omega));
    for (index_t i = 0; i < params_.power_iterations; ++i) {
      const host_matrix z = detail::host_qr(Backend::gram(exec, data_.parts, q)).first;  // orth(A^T Q), m x l
      q = matrix{};
      q = detail::orthonormal_basis<Backend>(exec, Backend::multiply(exec, data_.parts, z));
    }
    return q;
  }

  randomized_svd params_;
  index_t dimension_;
  std::string block_;
  detail::snapshots<Backend, Work> data_;
  double energy_ = 0;  ///< |A|_F^2, accumulated in double
};

}  // namespace ogpsa
