#pragma once
/// \file
/// Seeded Gaussian test matrices for the randomized estimators, generated on the host.
///
/// The generator is spelled out (xoshiro256** seeded through splitmix64, Blackman & Vigna; normals
/// by Marsaglia's polar method) rather than taken from <random>, whose distributions differ between
/// standard libraries: the same seed gives the same matrix with every compiler.

#include <array>
#include <cmath>
#include <cstdint>

#include "ogpsa/backend.hpp"
#include "ogpsa/config.hpp"

namespace ogpsa::detail {

/// A stream of standard normal numbers determined by its seed.
class gaussian_stream {
 public:
  explicit gaussian_stream(std::uint64_t seed) {
    for (auto& word : state_) word = splitmix64(seed);
  }

  double next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = 2 * uniform() - 1;
      v = 2 * uniform() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s == 0);
    const double scale = std::sqrt(-2 * std::log(s) / s);
    spare_ = v * scale;
    has_spare_ = true;
    return u * scale;
  }

 private:
  static std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  /// Uniform in [0, 1) with 53 random bits.
  double uniform() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return static_cast<double>(result >> 11) * 0x1.0p-53;
  }

  std::array<std::uint64_t, 4> state_{};
  double spare_ = 0;
  bool has_spare_ = false;
};

/// A rows x cols matrix of independent standard normal entries, filled column by column.
inline host_matrix gaussian_matrix(index_t rows, index_t cols, std::uint64_t seed) {
  gaussian_stream stream(seed);
  host_matrix m(rows, cols);
  for (index_t j = 0; j < cols; ++j)
    for (index_t i = 0; i < rows; ++i) m(i, j) = stream.next();
  return m;
}

}  // namespace ogpsa::detail
