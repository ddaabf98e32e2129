#pragma once
/// \file
/// The state a block keeps between reference passes: an orthonormal basis and what the estimator
/// learned about it. A plain aggregate, so saving a subspace is copying it.

#include <vector>

#include "ogpsa/config.hpp"

namespace ogpsa {

/// An orthonormal basis (dimension x rank, one direction per column) in the backend's memory.
///
/// \tparam Basis    element type the basis is stored in
/// \tparam Backend  the backend whose `matrix` holds it
template <class Basis, class Backend>
struct subspace {
  typename Backend::template matrix<Basis> basis;
  /// Strength of each direction: the singular value for SVD estimators, the mean gradient's norm
  /// for `mean_gradient`. Descending for SVD estimators.
  std::vector<double> strengths;
  /// Fraction of the reference data's energy (squared Frobenius norm) the basis captures, in [0, 1].
  double captured_energy = 0;
  /// Directions the estimator wanted but dropped as degenerate (zero or parallel references).
  index_t dropped = 0;

  index_t rank() const noexcept { return static_cast<index_t>(basis.cols()); }
  index_t dimension() const noexcept { return static_cast<index_t>(basis.rows()); }
};

}  // namespace ogpsa
