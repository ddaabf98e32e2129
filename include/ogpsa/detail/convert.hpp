#pragma once
/// \file
/// Conversions between element types and the types arithmetic happens in. The 16-bit storage
/// types convert only to and from float, so they go through float.

#include <type_traits>

#include "ogpsa/config.hpp"

namespace ogpsa::detail {

/// `x` as the arithmetic type `A` (float or double).
template <class A, class T>
OGPSA_HOST_DEVICE A widen(T x) noexcept {
  if constexpr (std::is_arithmetic_v<T>) return static_cast<A>(x);
  else return static_cast<A>(static_cast<float>(x));
}

/// `x`, computed in `A`, rounded to the element type `T` (16-bit types round from float).
template <class T, class A>
OGPSA_HOST_DEVICE T narrow(A x) noexcept {
  if constexpr (std::is_arithmetic_v<T>) return static_cast<T>(x);
  else return T(static_cast<float>(x));
}

}  // namespace ogpsa::detail
