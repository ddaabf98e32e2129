#pragma once
/// \file
/// Spectral helpers shared by the SVD-type estimators: descending eigen-pairs, rank selection
/// (fixed or by energy), numerical rank, deterministic orientation of directions, and the final
/// re-orthonormalization of a basis on its backend.

#include <cmath>
#include <limits>
#include <optional>
#include <string_view>

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>

#include "ogpsa/backend.hpp"
#include "ogpsa/config.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/subspace.hpp"

namespace ogpsa::detail {

/// Singular values (descending) and their vectors, as columns.
struct spectrum {
  host_vector values;
  host_matrix vectors;
};

/// Eigen-decomposition of a symmetric positive semi-definite matrix, as singular values of the
/// data it is the Gram matrix of: sqrt of the eigenvalues, descending, negatives clamped to 0.
inline spectrum gram_spectrum(const host_matrix& gram) {
  Eigen::SelfAdjointEigenSolver<host_matrix> eig(gram);
  const index_t n = gram.rows();
  spectrum s{host_vector(n), host_matrix(n, n)};
  for (index_t i = 0; i < n; ++i) {
    s.values(i) = std::sqrt(std::max(0.0, eig.eigenvalues()(n - 1 - i)));
    s.vectors.col(i) = eig.eigenvectors().col(n - 1 - i);
  }
  return s;
}

/// Directions whose singular value exceeds `limit * eps * largest` (and is not zero).
inline index_t numerical_rank(const host_vector& sigma, index_t limit, double eps) {
  if (sigma.size() == 0 || !(sigma(0) > 0)) return 0;
  const double tol = static_cast<double>(limit) * eps * sigma(0);
  index_t r = 0;
  while (r < sigma.size() && sigma(r) > tol) ++r;
  return r;
}

/// Checks the rank-selection hyper-parameters common to SVD estimators.
inline void validate_rank_selection(index_t rank, const std::optional<double>& energy,
                                    std::string_view where) {
  OGPSA_REQUIRE(rank >= 1, invalid_argument, where, "rank must be at least 1, got " << rank);
  if (energy)
    OGPSA_REQUIRE(*energy > 0.0 && *energy <= 1.0, invalid_argument, where,
                  "energy threshold must be in (0, 1], got " << *energy);
}

/// The rank to keep. Fixed rank: `rank`, which must not exceed `limit` = min(d, m). Energy: the
/// smallest k <= rank whose leading squared singular values reach `energy` of `total_energy`.
/// Either way at most `usable` (the numerical rank); the shortfall is reported as dropped.
struct rank_choice {
  index_t kept = 0;
  index_t dropped = 0;
};

inline rank_choice choose_rank(const host_vector& sigma, double total_energy, index_t rank,
                               const std::optional<double>& energy, index_t limit, index_t usable,
                               std::string_view where, std::string_view block) {
  if (!energy) {
    OGPSA_REQUIRE(rank <= limit, invalid_argument, where,
                  "block '" << block << "': rank " << rank << " exceeds min(d, m) = " << limit);
    const index_t kept = std::min(rank, usable);
    return {kept, rank - kept};
  }
  const index_t cap = std::min({rank, limit, usable});
  double captured = 0;
  index_t k = 0;
  while (k < cap && captured < *energy * total_energy) captured += sigma(k) * sigma(k), ++k;
  return {k, 0};
}

/// Sign of each direction so that it points along the reference data: `along(i)` is the sum of
/// the data's coefficients on direction i (u_i^T a_j summed over j). A zero sum falls back to
/// making `tie_break` column i's largest-magnitude entry positive.
inline host_vector orientation(const host_vector& along, const host_matrix& tie_break) {
  host_vector sign(along.size());
  for (index_t i = 0; i < along.size(); ++i) {
    if (along(i) != 0) {
      sign(i) = along(i) > 0 ? 1.0 : -1.0;
      continue;
    }
    index_t at = 0;
    tie_break.col(i).cwiseAbs().maxCoeff(&at);
    sign(i) = tie_break(at, i) < 0 ? -1.0 : 1.0;
  }
  return sign;
}

/// Fraction of `total` held by the first k squared values.
inline double energy_fraction(const host_vector& sigma, index_t k, double total) {
  return total > 0 ? sigma.head(k).squaredNorm() / total : 0.0;
}

/// The rank-selection step every SVD estimator ends with: keeps at most the numerically non-zero
/// directions of `sigma` (relative to `eps`, the working precision), chooses k by `rank` / `energy`
/// (see `choose_rank`) and records strengths, captured energy and dropped directions in `out`.
template <class Work, class Backend>
index_t select_rank(const host_vector& sigma, double total, index_t rank, const std::optional<double>& energy,
                    index_t limit, double eps, std::string_view where, std::string_view block,
                    subspace<Work, Backend>& out) {
  const index_t usable = numerical_rank(sigma, limit, eps);
  const rank_choice choice = choose_rank(sigma, total, rank, energy, limit, usable, where, block);
  out.strengths.assign(sigma.data(), sigma.data() + choice.kept);
  out.captured_energy = energy_fraction(sigma, choice.kept, total);
  out.dropped = choice.dropped;
  return choice.kept;
}

/// One Cholesky-QR pass in place: u <- u L^-T with L L^T = u^T u. A basis built through a Gram
/// matrix is orthonormal to within its rounding, so one pass restores orthonormality to working
/// precision; Gram-Schmidt takes over if the Cholesky factorization fails.
template <class Backend, class Matrix>
void reorthonormalize(typename Backend::execution& exec, Matrix& u) {
  if (u.cols() == 0) return;
  Eigen::LLT<host_matrix> llt(Backend::gram(exec, u, u));
  if (llt.info() != Eigen::Success) {
    Backend::gram_schmidt(exec, u, 0.0, 0.0);
    return;
  }
  Backend::multiply_in_place(exec, u, llt.matrixU().solve(host_matrix::Identity(u.cols(), u.cols())));
}

}  // namespace ogpsa::detail
