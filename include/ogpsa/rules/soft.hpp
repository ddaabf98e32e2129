#pragma once
/// \file
/// The soft projection rule: remove a fraction of the component in the subspace.

#include <cmath>

#include "ogpsa/config.hpp"
#include "ogpsa/family.hpp"
#include "ogpsa/error.hpp"

namespace ogpsa {

/// g <- g - alpha U (U^T g): interpolates between no projection (alpha = 0) and `orthogonal`
/// (alpha = 1), trading protection of the reference objectives against progress on the target.
///
/// Hyper-parameters (type, default, meaning): `include/ogpsa/README.md#soft`, the one table
/// of them, checked against this struct by the test `docs.reference_tables`.
struct soft {
  static constexpr const char* name = "soft";
  double alpha = 1.0;

  /// \throws invalid_argument when alpha is outside [0, 1] (or NaN).
  void validate() const {
    OGPSA_REQUIRE(alpha >= 0.0 && alpha <= 1.0, invalid_argument, "ogpsa::soft::validate",
                  "alpha must be in [0, 1], got " << alpha);
  }
  constexpr bool supports(family) const noexcept { return true; }
  constexpr bool scales_gradient() const noexcept { return false; }

  template <class T>
  OGPSA_HOST_DEVICE T apply(T* c, index_t k) const noexcept {
    for (index_t i = 0; i < k; ++i) c[i] *= static_cast<T>(alpha);
    return T(1);
  }
};

}  // namespace ogpsa
