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
/// Two modes:
/// - `per_direction` (default): g <- g - sum over {i : u_i^T g < 0} of (u_i^T g) u_i, any rank.
/// - `threshold`: the published code's rank-1 mode (REFERENCE.md). With one direction b:
///   cos(g, b) < 0 removes the b component; cos > 0 scales the whole gradient by `base_scale`;
///   cos == 0 leaves g unchanged. With two or more directions it falls back to the plain
///   orthogonal projection, as the published code does.
///
/// What `per_direction` guarantees, to first order: let r be the gradient of a reference loss,
/// lying in the subspace with nonnegative coordinates a_i = u_i^T r. The projected step
/// -lr P(g) changes that loss by -lr r^T P(g), and
///     r^T P(g) = sum_i a_i max(u_i^T g, 0) >= 0,
/// so it never raises it, whatever g. Every estimator orients each u_i along the sum of the
/// reference gradients it was fed (sum_j u_i^T r_j >= 0), so this holds for the loss whose
/// gradient is that sum as soon as the reference gradients lie in the subspace: `mean_gradient`
/// with one reference set, or a rank at least theirs. (The threshold mode keeps the first-order
/// property of its one direction when it removes, and scales by a nonnegative factor otherwise.)
///
/// Flat blocks only (`supports`): on a matrix-side block the sign test would apply to each target
/// vector (column of G, or row for `right`) separately, while the reference loss sums over all of
/// them, and the coordinates of a reference gradient's columns in the basis take either sign
/// column by column (the basis is oriented along their sum only): removing u_i^T g_j < 0 in every
/// column no longer implies the sum over columns cannot rise, so add_block refuses such blocks.
///
/// | hyper-parameter | type   | default         | meaning                                      |
/// |-----------------|--------|-----------------|----------------------------------------------|
/// | `mode`          | enum   | `per_direction` | which of the two behaviours above            |
/// | `base_scale`    | double | 1.0             | threshold mode: factor for agreeing gradients, >= 0 |
struct conflict_only {
  static constexpr const char* name = "conflict_only";
  enum class mode { per_direction, threshold };

  mode behaviour = mode::per_direction;
  double base_scale = 1.0;

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
    if (behaviour == mode::threshold && k == 1) return apply_threshold(c);
    if (behaviour == mode::threshold) return T(1);  // published fallback: plain projection
    for (index_t i = 0; i < k; ++i)
      if (!(c[i] < T(0))) c[i] = T(0);
    return T(1);
  }

 private:
  template <class T>
  OGPSA_HOST_DEVICE T apply_threshold(T* c) const noexcept {
    // The cosine's sign is the sign of u^T g: its denominators are positive.
    if (c[0] < T(0)) return T(1);
    const bool agrees = c[0] > T(0);
    c[0] = T(0);
    return agrees ? static_cast<T>(base_scale) : T(1);
  }
};

}  // namespace ogpsa
