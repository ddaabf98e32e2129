#pragma once
/// \file
/// Blocks of `lanes` values, the unit the CPU kernels compute on. With GCC and Clang a block is an
/// explicit SIMD vector (the vector extension: the compiler uses the target's widest registers and
/// splits the block as needed, at any optimization level, without reassociating anything); other
/// compilers get a plain array. Loads widen element types to the block's type, stores round back.
/// Blocks travel by reference only (passing wide vectors by value would depend on the target ABI),
/// so the helpers take the block's type explicitly: `load<float>(v, p)`, `store<float>(p, v)`.

#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__GNUC__) && defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "ogpsa/bfloat16.hpp"
#include "ogpsa/config.hpp"
#include "ogpsa/detail/convert.hpp"

namespace ogpsa::cpu::detail {

/// Values per block: one AVX-512 register of floats, two AVX2 ones, four SSE ones.
inline constexpr index_t lanes = 16;

#if defined(__GNUC__)

template <class A>
struct block_of {
  typedef A type __attribute__((vector_size(lanes * sizeof(A))));
};

#else

/// The portable block: element-wise arithmetic over an array.
template <class A>
struct array_block {
  A v[lanes];
  A& operator[](index_t l) { return v[l]; }
  A operator[](index_t l) const { return v[l]; }
  friend array_block operator*(const array_block& a, const array_block& b) {
    array_block out;
    for (index_t l = 0; l < lanes; ++l) out.v[l] = a.v[l] * b.v[l];
    return out;
  }
  array_block& operator+=(const array_block& b) {
    for (index_t l = 0; l < lanes; ++l) v[l] += b.v[l];
    return *this;
  }
  array_block& operator-=(const array_block& b) {
    for (index_t l = 0; l < lanes; ++l) v[l] -= b.v[l];
    return *this;
  }
};

template <class A>
struct block_of {
  using type = array_block<A>;
};

#endif

template <class A>
using block = typename block_of<A>::type;

/// out = the `lanes` elements at p, widened to `A`.
template <class A, class T>
void load(block<A>& out, const T* p) {
#if defined(__GNUC__)
  if constexpr (std::is_same_v<T, A>) {
    std::memcpy(&out, p, sizeof out);
    return;
  } else if constexpr (std::is_arithmetic_v<T>) {
    block<T> in;
    std::memcpy(&in, p, sizeof in);
    out = __builtin_convertvector(in, block<A>);
    return;
  } else if constexpr (std::is_same_v<T, bfloat16>) {  // the high half of a float's bits
    typedef std::uint16_t half_bits __attribute__((vector_size(lanes * 2)));
    typedef std::uint32_t bits __attribute__((vector_size(lanes * 4)));
    half_bits in;
    std::memcpy(&in, p, sizeof in);
#if defined(__AVX512F__)
    // One zero-extending move: GCC 12 lowers the generic conversion to four shuffles. (The
    // zero-masking form, because the unmasked one trips GCC 12's -Wmaybe-uninitialized.)
    const bits wide = reinterpret_cast<bits>(_mm512_maskz_cvtepu16_epi32(0xffff, reinterpret_cast<__m256i>(in))) << 16;
#else
    const bits wide = __builtin_convertvector(in, bits) << 16;
#endif
    block<float> f;
    std::memcpy(&f, &wide, sizeof f);
    out = __builtin_convertvector(f, block<A>);
    return;
  }
#endif
  for (index_t l = 0; l < lanes; ++l) out[l] = ogpsa::detail::widen<A>(p[l]);
}

/// The `lanes` elements at p = b, rounded to `T`.
template <class A, class T>
void store(T* p, const block<A>& b) {
#if defined(__GNUC__)
  if constexpr (std::is_same_v<T, A>) {
    std::memcpy(p, &b, sizeof b);
    return;
  } else if constexpr (std::is_arithmetic_v<T>) {
    const block<T> out = __builtin_convertvector(b, block<T>);
    std::memcpy(p, &out, sizeof out);
    return;
  }
#endif
  for (index_t l = 0; l < lanes; ++l) p[l] = ogpsa::detail::narrow<T>(b[l]);
}

/// out = value in every lane.
template <class A>
void splat(block<A>& out, A value) {
  for (index_t l = 0; l < lanes; ++l) out[l] = value;
}

/// The sum of a block's lanes, in lane order.
template <class A>
A lane_sum(const block<A>& b) {
  A sum = 0;
  for (index_t l = 0; l < lanes; ++l) sum += b[l];
  return sum;
}

}  // namespace ogpsa::cpu::detail
