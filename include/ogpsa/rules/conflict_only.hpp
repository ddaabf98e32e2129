#pragma once
/// \file
/// The conflict-aware rule: remove only what works against the reference objectives.

#include <cmath>

#include "ogpsa/config.hpp"
#include "ogpsa/error.hpp"

namespace ogpsa {

/// Removes only conflicting components. Estimators orient every basis direction u_i along the
/// reference gradients, so a safety step -g raises a reference loss to first order exactly when
/// u_i^T g < 0; those components are removed and the agreeing ones kept.
///
/// Two modes:
/// - `per_direction` (default): g <- g - sum over {i : u_i^T g < 0} of (u_i^T g) u_i, any rank.
/// - `threshold`: the published code's rank-1 mode (REFERENCE.md). With one direction b:
///   cos(g, b) < 0 removes the b component; cos > 0 scales the whole gradient by `base_scale`;
///   cos == 0 leaves g unchanged. With two or more directions it falls back to the plain
///   orthogonal projection, as the published code does. Scaling the whole gradient makes this
///   mode apply to flat blocks only.
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
