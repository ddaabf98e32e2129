#pragma once
/// \file
/// Host spectral helpers shared by the SVD-type estimators, small dense work on host matrices:
/// descending eigen-pairs of a Gram matrix, QR and Gram matrices of small matrices, rank selection
/// (fixed or by energy), numerical rank, deterministic orientation of directions, and the inverse
/// Cholesky factor a Cholesky-QR pass applies. What runs on a backend's data is in
/// `ogpsa/detail/orthonormalize.hpp`.

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include "ogpsa/backend.hpp"
#include "ogpsa/config.hpp"
#include "ogpsa/cpu/detail/householder.hpp"
#include "ogpsa/detail/dense.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/subspace.hpp"

namespace ogpsa::detail {

/// Singular values (descending) and their vectors, as columns.
struct spectrum {
  host_vector values;
  host_matrix vectors;
};

/// Eigen-decomposition of a symmetric positive semi-definite matrix, as singular values of the
/// data it is the Gram matrix of: sqrt of the eigenvalues, descending, negatives (rounding)
/// clamped to 0.
/// An empty Gram matrix (no direction left to decompose) has an empty spectrum.
/// \throws numeric_error when the Gram matrix holds NaN or Inf (finite data whose squares overflow
///         double, above about 1e154): its spectrum would read as zero, an empty subspace.
inline spectrum gram_spectrum(const host_matrix& gram) {
  OGPSA_REQUIRE(gram.allFinite(), numeric_error, "ogpsa::detail::gram_spectrum",
                "the " << gram.rows() << " x " << gram.cols()
                       << " Gram matrix of the data holds NaN or Inf (its squares overflow double)");
  const index_t n = gram.rows();
  if (n == 0) return {host_vector(0), host_matrix(0, 0)};  // Eigen's solver asserts on empty input
  Eigen::SelfAdjointEigenSolver<host_matrix> eig(gram);
  spectrum s{host_vector(n), host_matrix(n, n)};
  for (index_t i = 0; i < n; ++i) {
    const double e = eig.eigenvalues()(n - 1 - i);
    s.values(i) = std::sqrt(e < 0 ? 0.0 : e);  // a NaN stays NaN
    s.vectors.col(i) = eig.eigenvectors().col(n - 1 - i);
  }
  return s;
}

/// R (min(rows, cols) x cols) of a small host matrix a = Q R, on the calling thread (see
/// `ogpsa/cpu/detail/householder.hpp`: no product that may run on other threads).
inline host_matrix host_r(host_matrix a) {
  const cpu::detail::column_block<double> block{a.data(), a.rows(), a.cols(), 1, a.rows()};
  const auto f = cpu::detail::householder_qr<double>(std::span(&block, 1));
  return cpu::detail::upper_factor(std::span(&block, 1), f);
}

/// Q (rows x cols, orthonormal columns) and R (cols x cols) of a small tall host matrix a = Q R,
/// on the calling thread.
inline std::pair<host_matrix, host_matrix> host_qr(host_matrix a) {
  const cpu::detail::column_block<double> block{a.data(), a.rows(), a.cols(), 1, a.rows()};
  const auto f = cpu::detail::householder_qr<double>(std::span(&block, 1));
  host_matrix r = cpu::detail::upper_factor(std::span(&block, 1), f);
  cpu::detail::form_q(block, f);
  return {std::move(a), std::move(r)};
}

/// a^T a for a small host matrix, on the calling thread; exactly symmetric.
inline host_matrix host_gram(const host_matrix& a) {
  host_matrix g = host_matrix::Zero(a.cols(), a.cols());
  cpu::detail::gemm_serial(a.transpose(), a, g, 1.0);
  g.triangularView<Eigen::StrictlyUpper>() = g.transpose();
  return g;
}

/// Directions whose singular value exceeds `limit * eps * largest` (and is not zero).
inline index_t numerical_rank(const host_vector& sigma, index_t limit, double eps) {
  if (sigma.size() == 0 || !(sigma(0) > 0)) return 0;
  const double tol = static_cast<double>(limit) * eps * sigma(0);
  index_t r = 0;
  while (r < sigma.size() && sigma(r) > tol) ++r;
  return r;
}

/// The relative precision of singular values taken from a Gram matrix accumulated in double, for
/// data held in Work: the rounding of the data (eps_Work) or that of the Gram matrix's eigenvalues
/// (about eps_64 s_1^2, so sqrt(eps_64) = 2^-26 on the singular values), whichever is larger.
template <class Work>
inline constexpr double gram_route_eps = std::max(static_cast<double>(std::numeric_limits<Work>::epsilon()), 0x1p-26);

/// Checks the rank-selection hyper-parameters common to SVD estimators (an unset rank is valid).
inline void validate_rank_selection(std::optional<index_t> rank, const std::optional<double>& energy,
                                    std::string_view where) {
  if (rank) OGPSA_REQUIRE(*rank >= 1, invalid_argument, where, "rank must be at least 1, got " << *rank);
  if (energy)
    OGPSA_REQUIRE(*energy > 0.0 && *energy <= 1.0, invalid_argument, where,
                  "energy threshold must be in (0, 1], got " << *energy);
}

/// The rank an SVD estimator keeps for one block. Every block of a projector shares the estimator's
/// hyper-parameters while blocks differ in size, so the choice is per block and never an error:
/// - a fixed rank k (no energy threshold): min(k, limit, usable) directions, where limit = min(d, m)
///   and usable is the numerical rank; the shortfall, k minus that, is reported as dropped (the
///   projector passes it to `on_degenerate`). A block smaller than k (a bias, a norm's weight, a
///   pass of fewer snapshots than k) keeps every direction it has; the other blocks are unaffected.
/// - an energy threshold e: the smallest k whose leading squared singular values reach e of
///   `total_energy`, at most `rank` when one is given (the cap), limit and usable; nothing is
///   reported dropped.
struct rank_choice {
  index_t kept = 0;
  index_t dropped = 0;
};

/// `rank`: the fixed rank (required without `energy`), or with `energy` the cap (none when unset).
inline rank_choice choose_rank(const host_vector& sigma, double total_energy, std::optional<index_t> rank,
                               const std::optional<double>& energy, index_t limit, index_t usable) {
  if (!energy) {
    const index_t asked = rank.value();
    const index_t kept = std::min({asked, limit, usable});
    return {kept, asked - kept};
  }
  const index_t cap = std::min({rank.value_or(limit), limit, usable});
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
/// \throws numeric_error when `total` (the data's squared norm) or a singular value is not
///         finite: data whose squares overflow double would otherwise select nothing, an empty
///         subspace that reads as a valid one.
template <class Work, class Backend>
index_t select_rank(const host_vector& sigma, double total, std::optional<index_t> rank,
                    const std::optional<double>& energy, index_t limit, double eps, subspace<Work, Backend>& out) {
  constexpr const char* where = "ogpsa::detail::select_rank";
  OGPSA_REQUIRE(std::isfinite(total), numeric_error, where,
                "the data's squared norm is " << total << " (its squares overflow double)");
  for (index_t i = 0; i < sigma.size(); ++i)
    OGPSA_REQUIRE(std::isfinite(sigma(i)), numeric_error, where, "singular value " << i << " is " << sigma(i));
  const index_t usable = numerical_rank(sigma, limit, eps);
  const rank_choice choice = choose_rank(sigma, total, rank, energy, limit, usable);
  out.strengths.assign(sigma.data(), sigma.data() + choice.kept);
  out.captured_energy = energy_fraction(sigma, choice.kept, total);
  out.dropped = choice.dropped;
  return choice.kept;
}

/// R^-1 for one Cholesky-QR pass, u <- u R^-1 with R^T R = g = u^T u (accumulated in double), or
/// nothing when u (of working type Work) is too ill-conditioned for one pass to bring it within
/// 1e-3 of orthonormal: its estimated condition number must stay below 1e-3 / eps (rounding of
/// u R^-1 in the working type) and 0.1 / sqrt(eps_double) (the Gram matrix squares it). A function
/// of g alone, so ranks holding rows of u decide alike from the summed g.
template <class Work>
std::optional<host_matrix> cholesky_inverse_factor(const host_matrix& g) {
  const Eigen::LLT<host_matrix> llt(g);
  if (llt.info() != Eigen::Success) return std::nullopt;
  const host_vector r = llt.matrixLLT().diagonal().cwiseAbs();
  const double floor = std::max(1e3 * std::numeric_limits<Work>::epsilon(),
                                10 * std::sqrt(std::numeric_limits<double>::epsilon()));
  if (!(r.minCoeff() > floor * r.maxCoeff())) return std::nullopt;
  return host_matrix(llt.matrixU().solve(host_matrix::Identity(g.rows(), g.cols())));
}

}  // namespace ogpsa::detail
