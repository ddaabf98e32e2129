#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include <doctest/doctest.h>

#include <ogpsa/bfloat16.hpp>
#include <ogpsa/float16.hpp>

namespace {
float from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
}  // namespace

TEST_CASE("the 16-bit types are trivially copyable elements that accumulate in float") {
  CHECK(std::is_trivially_copyable_v<ogpsa::bfloat16>);
  CHECK(std::is_trivially_copyable_v<ogpsa::float16>);
  CHECK(ogpsa::element<ogpsa::bfloat16>);
  CHECK(std::is_same_v<ogpsa::accumulator_t<ogpsa::bfloat16, ogpsa::float16>, float>);
  CHECK(std::is_same_v<ogpsa::working_t<ogpsa::bfloat16>, float>);
}

TEST_CASE("every float16 value survives a round trip through float") {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const auto h = ogpsa::float16::from_bits(static_cast<std::uint16_t>(b));
    const float f = static_cast<float>(h);
    if (std::isnan(f)) continue;
    CHECK(ogpsa::float16(f).bits == h.bits);
  }
}

TEST_CASE("every bfloat16 value survives a round trip through float") {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const auto h = ogpsa::bfloat16::from_bits(static_cast<std::uint16_t>(b));
    const float f = static_cast<float>(h);
    if (std::isnan(f)) {
      CHECK(std::isnan(static_cast<float>(ogpsa::bfloat16(f))));
      continue;
    }
    CHECK(ogpsa::bfloat16(f).bits == h.bits);
  }
}

#if defined(__FLT16_MAX__)
TEST_CASE("float to float16 rounds like the compiler's _Float16") {
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint32_t> bits;
  for (int i = 0; i < 2000000; ++i) {
    const float f = from_bits(bits(rng));
    if (std::isnan(f)) continue;
    const _Float16 reference = static_cast<_Float16>(f);
    std::uint16_t expected;
    std::memcpy(&expected, &reference, sizeof expected);
    if (ogpsa::float16(f).bits != expected) {
      FAIL_CHECK("float " << f << " rounds to " << ogpsa::float16(f).bits << ", expected " << expected);
      break;
    }
  }
}
#endif

TEST_CASE("bfloat16 rounds to nearest even") {
  CHECK(ogpsa::bfloat16(from_bits(0x3f808000u)).bits == 0x3f80u);  // tie, even below
  CHECK(ogpsa::bfloat16(from_bits(0x3f818000u)).bits == 0x3f82u);  // tie, even above
  CHECK(ogpsa::bfloat16(from_bits(0x3f808001u)).bits == 0x3f81u);
  CHECK(ogpsa::bfloat16(std::numeric_limits<float>::infinity()).bits == 0x7f80u);
  CHECK(ogpsa::float16(1e6f).bits == 0x7c00u);
  CHECK(static_cast<float>(ogpsa::float16(65504.0f)) == 65504.0f);
  CHECK(static_cast<float>(ogpsa::float16(5.9604645e-8f)) == 5.9604645e-8f);  // smallest subnormal
}
