#pragma once
/// \file
/// The hard projection rule: remove the whole component in the subspace.

#include "ogpsa/config.hpp"
#include "ogpsa/family.hpp"

namespace ogpsa {

/// g <- g - U (U^T g). Afterwards U^T g = 0 and g^T g_before = |g|^2 >= 0 (still a descent
/// direction for the objective g came from); applying it twice changes nothing.
/// Sun et al., "Orthogonal Gradient Projection for Safety Alignment", arXiv 2602.07892.
///
/// No hyper-parameters.
struct orthogonal {
  static constexpr const char* name = "orthogonal";

  void validate() const noexcept {}
  constexpr bool supports(family) const noexcept { return true; }
  constexpr bool scales_gradient() const noexcept { return false; }

  template <class T>
  OGPSA_HOST_DEVICE T apply(T* /*coefficients*/, index_t /*k*/) const noexcept {
    return T(1);  // remove every coefficient as it is
  }
};

}  // namespace ogpsa
