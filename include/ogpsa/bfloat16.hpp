#pragma once
/// \file
/// `ogpsa::bfloat16`: the bfloat16 storage type (1 sign, 8 exponent, 7 mantissa bits), bit-compatible
/// with `c10::BFloat16`, `__nv_bfloat16` and `Eigen::bfloat16`, so views of framework and device
/// buffers can use it directly. Arithmetic happens in float: convert, compute, convert back.

#include <cstdint>
#include <cstring>

#include "ogpsa/config.hpp"
#include "ogpsa/element.hpp"

namespace ogpsa {

struct bfloat16 {
  std::uint16_t bits;

  bfloat16() = default;
  /// Rounds to nearest, ties to even; NaN stays NaN.
  OGPSA_HOST_DEVICE explicit bfloat16(float value) : bits(round(value)) {}
  OGPSA_HOST_DEVICE explicit operator float() const { return widen(bits); }

  static OGPSA_HOST_DEVICE bfloat16 from_bits(std::uint16_t b) {
    bfloat16 h;
    h.bits = b;
    return h;
  }

  /// Device code from sm_80 on rounds with the hardware's instruction, the NaN apart, because the
  /// hardware returns one canonical NaN: both give the same bits. Widening is a shift everywhere.
  static OGPSA_HOST_DEVICE std::uint16_t round(float value) {
    std::uint32_t u;
    std::memcpy(&u, &value, sizeof u);
    const auto nan = static_cast<std::uint16_t>((u >> 16) | 0x0040u);  // quiet, with sign and payload
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    std::uint16_t b;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(b) : "f"(value));
    return (u & 0x7fffffffu) > 0x7f800000u ? nan : b;
#else
    if ((u & 0x7fffffffu) > 0x7f800000u) return nan;
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<std::uint16_t>(u >> 16);
#endif
  }

  static OGPSA_HOST_DEVICE float widen(std::uint16_t b) {
    const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
};

static_assert(sizeof(bfloat16) == 2);

template <>
struct element_traits<bfloat16> {
  static constexpr bool is_element = true;
  using accumulator = float;
  static constexpr const char* name = "bfloat16";
};

}  // namespace ogpsa
