#pragma once
/// \file
/// The published estimator: one unit direction per reference data set.

#include <cmath>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ogpsa/backend.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/detail/rounds.hpp"
#include "ogpsa/estimator.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/family.hpp"
#include "ogpsa/subspace.hpp"

namespace ogpsa {

template <class Backend, class Work>
class mean_gradient_pass;

/// The mean reference gradient of each set, normalized, then orthonormalized across sets, exactly
/// as the published OGPSA code does (Sun et al., arXiv 2602.07892; see `include/ogpsa/PUBLISHED.md`):
///
/// - per set s: m_s = mean of the fed gradients; dropped when |m_s| <= `norm_epsilon`, else
///   b_s = m_s / (|m_s| + `norm_epsilon`);
/// - with `first_set_required` (the default), a block whose set 0 is dropped gets an empty
///   subspace, whatever the other sets hold: the published code leaves a tensor without a
///   first-set direction unchanged, even when the second set has one;
/// - one surviving direction: u = b / sqrt(b^T b + `orthogonalization_epsilon`), which makes
///   g - u u^T g equal the published g - (g^T b / (b^T b + 1e-8)) b;
/// - several: modified Gram-Schmidt with re-orthogonalization, u_j = w_j / (|w_j| + 1e-8), where a
///   direction with |w_j| + 1e-8 < `parallel_tolerance` is parallel to the earlier ones and dropped.
///
/// Flat blocks only (a mean gradient is one vector per block). Rank = number of sets kept.
///
/// Each pass is estimated on its own, at the current weights: a set whose mean is zero in a later
/// pass contributes nothing, where the published code keeps that tensor's direction from an
/// earlier refresh (it stores directions in a dictionary that a zero mean does not overwrite).
/// ogpsa does not reproduce that: a basis depends only on its pass (which is what makes `state()`
/// and `restore()` exact; the published directions are not checkpointed, so its own behaviour
/// after a restart differs), and a mean that is zero at the current weights says the reference
/// loss has, to first order, no stake in the tensor any more.
///
/// Hyper-parameters (type, default, meaning): `include/ogpsa/README.md#mean_gradient`, the one table
/// of them, checked against this struct by the test `docs.reference_tables`.
struct mean_gradient {
  static constexpr const char* name = "mean_gradient";

  double norm_epsilon = 1e-10;
  double orthogonalization_epsilon = 1e-8;
  double parallel_tolerance = 1e-6;
  bool first_set_required = true;

  /// \throws invalid_argument for a negative or non-finite epsilon.
  void validate() const {
    constexpr const char* where = "ogpsa::mean_gradient::validate";
    // Not a structured binding: clang before 16 cannot use one inside the message's lambda.
    for (const auto& setting : {std::pair{"norm_epsilon", norm_epsilon},
                                std::pair{"orthogonalization_epsilon", orthogonalization_epsilon},
                                std::pair{"parallel_tolerance", parallel_tolerance}})
      OGPSA_REQUIRE(std::isfinite(setting.second) && setting.second >= 0, invalid_argument, where,
                    setting.first << " must be finite and >= 0, got " << setting.second);
  }

  constexpr bool supports(family f) const noexcept { return f == family::flat; }

  /// The work on one block during one reference pass: the running sum and count of each set.
  template <class Backend, class Work>
  using pass = mean_gradient_pass<Backend, Work>;
};

/// The work of `mean_gradient` on one block during one reference pass.
template <class Backend, class Work>
class mean_gradient_pass {
 public:
  using execution = typename Backend::execution;
  using matrix = typename Backend::template matrix<Work>;

  mean_gradient_pass(const mean_gradient& params, index_t dimension, std::string block)
      : params_(params), dimension_(dimension), block_(std::move(block)) {}

  template <class S>
  void feed(execution& exec, detail::matrix_ref<const S, typename Backend::memory_space> columns,
            index_t set) {
    OGPSA_REQUIRE(set >= 0, invalid_argument, "ogpsa::mean_gradient::feed",
                  "block '" << block_ << "': set index must be >= 0, got " << set);
    const auto s = static_cast<std::size_t>(set);
    if (s >= sums_.size()) sums_.resize(s + 1), counts_.resize(s + 1, 0);
    if (counts_[s] == 0) sums_[s] = Backend::template zeros<Work>(exec, dimension_, 1);
    Backend::add_into(exec, columns, sums_[s], 0);
    ++counts_[s];
  }

  subspace<Work, Backend> finish(execution& exec) { return detail::run_locally(estimate(exec, {})); }

  /// The estimate, awaiting sums across ranks of the norms and dot products of a sharded block
  /// (a flat block's pieces split the target rows); `shard.split == none`: nothing is awaited.
  detail::rounds<subspace<Work, Backend>> estimate(execution& exec, target_shard shard) {
    const bool sharded = shard.split != target_split::none;
    std::vector<double> squares(sums_.size());
    for (std::size_t s = 0; s < sums_.size(); ++s) {
      OGPSA_REQUIRE(counts_[s] > 0, invalid_argument, "ogpsa::mean_gradient::finish",
                    "block '" << block_ << "': reference set " << s
                              << " received no gradient (sets must be numbered 0, 1, ...)");
      squares[s] = Backend::gram(exec, sums_[s], sums_[s])(0, 0);
    }
    if (sharded) co_await detail::summed(std::span<double>(squares));
    subspace<Work, Backend> out;
    if (params_.first_set_required && !gives_direction(norm_of_mean(squares, 0))) {
      out.basis = Backend::template zeros<Work>(exec, dimension_, 0);
      out.dropped = static_cast<index_t>(sums_.size());
      co_return out;
    }
    std::vector<matrix> directions;
    double kept_energy = 0, total_energy = 0;
    for (std::size_t s = 0; s < sums_.size(); ++s) {
      const auto count = static_cast<double>(counts_[s]);
      const double mean_norm = norm_of_mean(squares, s);
      total_energy += mean_norm * mean_norm;
      if (!gives_direction(mean_norm)) {
        ++out.dropped;
        continue;
      }
      kept_energy += mean_norm * mean_norm;
      const double scale = 1.0 / (count * (mean_norm + params_.norm_epsilon));
      directions.push_back(Backend::multiply(exec, sums_[s], host_matrix::Constant(1, 1, scale)));
      out.strengths.push_back(mean_norm);
    }
    out.captured_energy = total_energy > 0 ? kept_energy / total_energy : 0.0;
    if (directions.size() == 1) {
      double bb = Backend::gram(exec, directions[0], directions[0])(0, 0);
      if (sharded) co_await detail::summed(std::span<double>(&bb, 1));
      out.basis = Backend::multiply(exec, directions[0],
                                    host_matrix::Constant(1, 1, 1.0 / std::sqrt(bb + params_.orthogonalization_epsilon)));
      co_return out;
    }
    // Modified Gram-Schmidt with one re-orthogonalization pass: w_j is direction j minus its
    // components along the kept directions before it, u_j = w_j / (|w_j| + eps), and w_j is
    // parallel to them (dropped) when |w_j| + eps < parallel_tolerance. Each dot product is a sum
    // over the ranks' pieces, awaited before it is used.
    std::vector<index_t> kept;
    std::vector<double> strengths;
    for (std::size_t j = 0; j < directions.size(); ++j) {
      for (int pass = 0; pass < 2; ++pass)
        for (index_t i : kept) {
          double dot = Backend::gram(exec, directions[static_cast<std::size_t>(i)], directions[j])(0, 0);
          if (sharded) co_await detail::summed(std::span<double>(&dot, 1));
          Backend::multiply_add(exec, directions[static_cast<std::size_t>(i)], host_matrix::Constant(1, 1, -dot),
                                directions[j]);
        }
      double norm = Backend::gram(exec, directions[j], directions[j])(0, 0);
      if (sharded) co_await detail::summed(std::span<double>(&norm, 1));
      norm = std::sqrt(norm);
      if (!(norm + params_.orthogonalization_epsilon >= params_.parallel_tolerance)) {
        ++out.dropped;
        continue;
      }
      directions[j] = Backend::multiply(exec, directions[j],
                                        host_matrix::Constant(1, 1, 1.0 / (norm + params_.orthogonalization_epsilon)));
      kept.push_back(static_cast<index_t>(j));
      strengths.push_back(out.strengths[j]);
    }
    out.strengths = std::move(strengths);
    std::vector<matrix> basis;
    for (index_t i : kept) basis.push_back(std::move(directions[static_cast<std::size_t>(i)]));
    out.basis = basis.empty() ? Backend::template zeros<Work>(exec, dimension_, 0) : Backend::concatenate(exec, basis);
    co_return out;
  }

 private:
  /// |m_s| from the squared norm of set s's sum.
  double norm_of_mean(const std::vector<double>& squares, std::size_t s) const {
    return std::sqrt(squares[s]) / static_cast<double>(counts_[s]);
  }
  /// Whether a set whose mean has this norm gives a direction (NaN does not).
  bool gives_direction(double mean_norm) const { return mean_norm > params_.norm_epsilon; }

  mean_gradient params_;
  index_t dimension_;
  std::string block_;
  std::vector<matrix> sums_;
  std::vector<index_t> counts_;
};

}  // namespace ogpsa
