#pragma once
/// \file
/// Orthonormal bases on a backend, for the SVD-type estimators: Cholesky-QR passes over a basis
/// where it lives (its Gram matrix and inverse factor on the host, `ogpsa/detail/spectral.hpp`),
/// with modified Gram-Schmidt or Householder QR when a basis is too ill-conditioned for them.

#include "ogpsa/detail/spectral.hpp"

namespace ogpsa::detail {

/// One Cholesky-QR pass in place (see `cholesky_inverse_factor`). Returns false, leaving u as it
/// was, when u is too ill-conditioned for it.
template <class Backend, class Matrix>
bool cholesky_qr(typename Backend::execution& exec, Matrix& u) {
  const auto inverse = cholesky_inverse_factor<typename Matrix::Scalar>(Backend::gram(exec, u, u));
  if (inverse) Backend::multiply_in_place(exec, u, *inverse);
  return inverse.has_value();
}

/// Restores orthonormality to working precision in place, for a basis that is orthonormal to within
/// its rounding (one built through a Gram matrix): one Cholesky-QR pass, or modified Gram-Schmidt
/// if that fails.
template <class Backend, class Matrix>
void reorthonormalize(typename Backend::execution& exec, Matrix& u) {
  if (u.cols() > 0 && !cholesky_qr<Backend>(exec, u)) Backend::gram_schmidt(exec, u, 0.0, 0.0);
}

/// An orthonormal basis of the range of a tall y (d x l, l <= d): two Cholesky-QR passes
/// (CholeskyQR2: a pass over y each, against Householder QR's several), or Householder QR when y is
/// too ill-conditioned for them (or rank deficient: its basis then completes the range).
template <class Backend, class Matrix>
Matrix orthonormal_basis(typename Backend::execution& exec, Matrix y) {
  if (y.cols() > 0 && cholesky_qr<Backend>(exec, y) && cholesky_qr<Backend>(exec, y)) return y;
  Backend::householder_basis(exec, y);
  return y;
}

}  // namespace ogpsa::detail
