#pragma once
/// \file
/// Conversions between element types, callable from kernels and from host code.

#include <type_traits>

#include "ogpsa/bfloat16.hpp"
#include "ogpsa/config.hpp"
#include "ogpsa/float16.hpp"

namespace ogpsa::cuda::detail {

template <class T>
inline constexpr bool is_half_v = std::is_same_v<T, bfloat16> || std::is_same_v<T, float16>;

/// `From` as `To`: exact when `To` holds every `From` value, else rounded to nearest even.
/// 16-bit types go through float, as their own conversions do (so double -> bfloat16 rounds
/// twice, exactly as `static_cast` does on the host).
template <class To, class From>
OGPSA_HOST_DEVICE To element_cast(From value) {
  if constexpr (std::is_same_v<To, From>) return value;
  else if constexpr (is_half_v<From>) return element_cast<To>(static_cast<float>(value));
  else if constexpr (is_half_v<To>) return To(static_cast<float>(value));
  else return static_cast<To>(value);
}

}  // namespace ogpsa::cuda::detail
