#pragma once
/// \file
/// Seeded Gaussian test matrices for the randomized estimators.
///
/// Each seed defines one unbounded matrix of standard normal entries, and entry (i, j) is a function
/// of the seed, i and j alone (a counter-based generator: Philox4x32-10, Salmon, Moraes, Dror and
/// Shaw, SC 2011; normals by Marsaglia's polar method). So any panel of rows can be generated on its
/// own, in any order and on any thread, with the same bits whatever the panel size, and a taller or
/// wider matrix of the same seed starts with the smaller one. The generator is spelled out rather
/// than taken from <random>, whose distributions differ between standard libraries: the same seed
/// gives the same matrix with every compiler (the polar method needs only log and sqrt).

#include <array>
#include <cmath>
#include <cstdint>

#include "ogpsa/backend.hpp"
#include "ogpsa/config.hpp"

namespace ogpsa::detail {

/// Philox4x32-10: 128 random bits for a 128-bit counter under a 64-bit key.
inline std::array<std::uint32_t, 4> philox(std::array<std::uint32_t, 4> counter,
                                           std::array<std::uint32_t, 2> key) {
  constexpr std::uint64_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
  constexpr std::uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = m0 * counter[0], p1 = m1 * counter[2];
    counter = {static_cast<std::uint32_t>(p1 >> 32) ^ counter[1] ^ key[0], static_cast<std::uint32_t>(p1),
               static_cast<std::uint32_t>(p0 >> 32) ^ counter[3] ^ key[1], static_cast<std::uint32_t>(p0)};
    key = {key[0] + w0, key[1] + w1};
  }
  return counter;
}

/// Entries (2 p, j) and (2 p + 1, j) of the seed's matrix: the first pair of uniforms in (-1, 1)^2
/// that the polar method accepts, the a-th candidate coming from the counter (p, j, a).
inline std::array<double, 2> gaussian_pair(std::uint64_t seed, index_t p, index_t j) {
  const std::array<std::uint32_t, 2> key{static_cast<std::uint32_t>(seed),
                                         static_cast<std::uint32_t>(seed >> 32)};
  const auto pair = static_cast<std::uint64_t>(p);
  for (std::uint32_t attempt = 0;; ++attempt) {
    const auto bits = philox({static_cast<std::uint32_t>(pair), static_cast<std::uint32_t>(pair >> 32),
                              static_cast<std::uint32_t>(j), attempt},
                             key);
    // 53 random bits each: uniform in [0, 1), then in [-1, 1).
    const auto uniform = [](std::uint32_t hi, std::uint32_t lo) {
      return static_cast<double>(((static_cast<std::uint64_t>(hi) << 32) | lo) >> 11) * 0x1.0p-53;
    };
    const double u = 2 * uniform(bits[0], bits[1]) - 1, v = 2 * uniform(bits[2], bits[3]) - 1;
    const double s = u * u + v * v;
    if (s >= 1 || s == 0) continue;
    const double scale = std::sqrt(-2 * std::log(s) / s);
    return {u * scale, v * scale};
  }
}

/// Rows [first, first + rows) of columns [0, cols) of the seed's matrix, rounded to T, into the
/// column-major `out` (leading dimension `ld`). Columns are numbered below 2^32.
template <class T>
void gaussian_panel(std::uint64_t seed, index_t first, index_t rows, index_t cols, T* out, index_t ld) {
  for (index_t j = 0; j < cols; ++j) {
    T* column = out + j * ld;
    for (index_t i = first; i < first + rows;) {
      const std::array<double, 2> pair = gaussian_pair(seed, i / 2, j);
      for (index_t half = i % 2; half < 2 && i < first + rows; ++half, ++i)
        column[i - first] = static_cast<T>(pair[static_cast<std::size_t>(half)]);
    }
  }
}

/// The leading rows x cols block of the seed's matrix, on the host in double.
inline host_matrix gaussian_matrix(index_t rows, index_t cols, std::uint64_t seed) {
  host_matrix m(rows, cols);
  gaussian_panel(seed, 0, rows, cols, m.data(), rows);
  return m;
}

}  // namespace ogpsa::detail
