#pragma once
/// \file
/// The conflict-aware rule: remove only what works against the reference objectives.

#include <cmath>

#include "ogpsa/config.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/family.hpp"

namespace ogpsa {

/// Removes only conflicting components, on flat blocks.
///
/// Two behaviours, chosen by the member `behaviour` (of type `conflict_only::mode`):
/// - `per_direction` (default): g <- g - sum over {i : u_i^T g < 0} of (u_i^T g) u_i, any rank.
/// - `threshold`: the published code's rank-1 mode (`include/ogpsa/PUBLISHED.md`). With one
///   direction b: cos(g, b) < 0 removes the b component; cos > 0 scales the whole gradient by
///   `base_scale`; cos == 0 leaves g unchanged. With two or more directions, `several_directions`
///   says what happens: `fallback::project`, the plain orthogonal projection (the published SFT
///   trainer), or `fallback::unchanged`, the gradient is left as it is (the published DPO trainer).
///
/// What `per_direction` guarantees, to first order: let r be the gradient of a reference loss,
/// lying in the subspace with nonnegative coordinates a_i = u_i^T r. The projected step
/// -lr P(g) changes that loss by -lr r^T P(g), and
///     r^T P(g) = sum_i a_i max(u_i^T g, 0) >= 0,
/// so it never raises it, whatever g. Every estimator orients each u_i along the sum of the
/// reference gradients it was fed (sum_j u_i^T r_j >= 0), so this holds for the loss whose
/// gradient is that sum as soon as the reference gradients lie in the subspace: `mean_gradient`
/// with one reference set, or a rank at least theirs. (The threshold mode keeps the first-order
/// property of its one direction when it removes, and scales by a nonnegative factor otherwise; with
/// `fallback::unchanged` and two or more directions it keeps none, as the published DPO trainer.)
///
/// Flat blocks only (`supports`): on a matrix-side block the sign test would apply to each target
/// vector (column of G, or row for `right`) separately, while the reference loss sums over all of
/// them, and the coordinates of a reference gradient's columns in the basis take either sign
/// column by column (the basis is oriented along their sum only): removing u_i^T g_j < 0 in every
/// column no longer implies the sum over columns cannot rise, so add_block refuses such blocks.
///
/// The threshold mode counts directions of the basis, not reference sets: a second set parallel
/// to the first (always so in a one-element tensor) adds no direction, so the one-direction rule
/// applies, where the published code, counting sets, takes its two-set branch. The rule sees
/// only the basis, and a parallel set carries no information the one-direction test lacks.
///
/// The threshold mode is not linear: deciding once on an accumulated gradient differs from
/// deciding on each micro-batch's gradient, as the published code does (it projects in a
/// backward hook). `projector::project()` decides on what it is given; to decide per micro-batch
/// project each micro-batch's gradient (`projector::project(block, gradient)`), or use
/// `ogpsa::torch::placement::micro_batches`.
///
/// Hyper-parameters (type, default, meaning): `include/ogpsa/README.md#conflict_only`, the one table
/// of them, checked against this struct by the test `docs.reference_tables`.
struct conflict_only {
  static constexpr const char* name = "conflict_only";
  enum class mode { per_direction, threshold };
  /// What the threshold mode does with two or more directions.
  enum class fallback { project, unchanged };

  mode behaviour = mode::per_direction;
  double base_scale = 1.0;
  fallback several_directions = fallback::project;

  /// \throws invalid_argument when base_scale is negative, NaN or infinite.
  void validate() const {
    OGPSA_REQUIRE(std::isfinite(base_scale) && base_scale >= 0.0, invalid_argument,
                  "ogpsa::conflict_only::validate",
                  "base_scale must be finite and >= 0, got " << base_scale);
  }
  /// Flat blocks only, in both modes (see above).
  constexpr bool supports(family f) const noexcept { return f == family::flat; }
  constexpr bool scales_gradient() const noexcept { return behaviour == mode::threshold; }

  template <class T>
  OGPSA_HOST_DEVICE T apply(T* c, index_t k) const noexcept {
    if (behaviour == mode::threshold) return apply_threshold(c, k);
    for (index_t i = 0; i < k; ++i)
      if (!(c[i] < T(0))) c[i] = T(0);
    return T(1);
  }

 private:
  template <class T>
  OGPSA_HOST_DEVICE T apply_threshold(T* c, index_t k) const noexcept {
    if (k == 1) return apply_one_direction(c);
    if (several_directions == fallback::unchanged)
      for (index_t i = 0; i < k; ++i) c[i] = T(0);
    return T(1);
  }

  template <class T>
  OGPSA_HOST_DEVICE T apply_one_direction(T* c) const noexcept {
    // The cosine's sign is the sign of u^T g: its denominators are positive.
    if (c[0] < T(0)) return T(1);
    const bool agrees = c[0] > T(0);
    c[0] = T(0);
    return agrees ? static_cast<T>(base_scale) : T(1);
  }
};

}  // namespace ogpsa
