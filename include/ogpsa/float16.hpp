#pragma once
/// \file
/// `ogpsa::float16`: IEEE 754 binary16 storage (1 sign, 5 exponent, 10 mantissa bits), bit-compatible
/// with `c10::Half`, `__half` and `Eigen::half`. Arithmetic happens in float.

#include <cstdint>
#include <cstring>

#include "ogpsa/config.hpp"
#include "ogpsa/element.hpp"

namespace ogpsa {

struct float16 {
  std::uint16_t bits;

  float16() = default;
  /// Rounds to nearest, ties to even, with subnormals; overflow gives infinity; NaN stays NaN.
  OGPSA_HOST_DEVICE explicit float16(float value) : bits(round(value)) {}
  OGPSA_HOST_DEVICE explicit operator float() const { return widen(bits); }

  static OGPSA_HOST_DEVICE float16 from_bits(std::uint16_t b) {
    float16 h;
    h.bits = b;
    return h;
  }

  /// Device code converts with the hardware's instructions (one each, where the integer version
  /// below takes tens); NaNs are handled apart, because the hardware returns one canonical NaN, so
  /// both give the same bits.
  static OGPSA_HOST_DEVICE std::uint16_t round(float value) {
    std::uint32_t x;
    std::memcpy(&x, &value, sizeof x);
    const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
#if defined(__CUDA_ARCH__)
    std::uint16_t h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(value));
    return x > 0x7f800000u ? static_cast<std::uint16_t>(sign | 0x7e00u) : h;
#else
    if (x >= 0x7f800000u) return sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u);  // NaN, Inf
    if (x >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to infinity
    if (x < 0x38800000u) return sign | subnormal(x);
    std::uint32_t h = (x >> 13) - (112u << 10);  // rebias the exponent from 127 to 15
    const std::uint32_t rest = x & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry correctly bumps the exponent
    return static_cast<std::uint16_t>(sign | h);
#endif
  }

  static OGPSA_HOST_DEVICE float widen(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    std::uint32_t u;
#if defined(__CUDA_ARCH__)
    float f, special;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    u = sign | 0x7f800000u | (mantissa << 13);  // Inf, or NaN with its sign and payload
    std::memcpy(&special, &u, sizeof special);
    return exponent == 31 ? special : f;
#else
    if (exponent == 0) {
      float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;  // m * 2^-24
      std::memcpy(&u, &magnitude, sizeof u);
      u |= sign;
    } else if (exponent == 31) {
      u = sign | 0x7f800000u | (mantissa << 13);
    } else {
      u = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    }
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
#endif
  }

 private:
  /// |value| < 2^-14: a half subnormal h * 2^-24 (or zero), rounded to nearest even.
  static OGPSA_HOST_DEVICE std::uint16_t subnormal(std::uint32_t x) {
    if (x <= 0x33000000u) return 0;  // <= 2^-25: rounds (ties to even) to zero
    const std::uint32_t exponent = x >> 23, mantissa = (x & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - exponent;  // in [14, 24]
    std::uint32_t h = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (h & 1u))) ++h;
    return static_cast<std::uint16_t>(h);
  }
};

static_assert(sizeof(float16) == 2);

template <>
struct element_traits<float16> {
  static constexpr bool is_element = true;
  using accumulator = float;
  static constexpr const char* name = "float16";
};

}  // namespace ogpsa
