#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/cpu/detail/compile_time.hpp>

using ogpsa::index_t;
namespace d = ogpsa::cpu::detail;

TEST_CASE("with_constant passes a run-time count as a compile-time constant, and nothing out of range") {
  for (index_t n = 0; n <= 9; ++n) {
    CAPTURE(n);
    index_t seen = 0, calls = 0;
    d::with_constant<8>(n, [&](auto count) {
      static_assert(count() >= 1 && count() <= 8);
      seen = count();
      ++calls;
    });
    CHECK(calls == (n >= 1 && n <= 8 ? 1 : 0));
    CHECK(seen == (n <= 8 ? n : 0));
  }
}

TEST_CASE("unroll calls its body once per index, in order") {
  std::vector<int> seen;
  d::unroll<5>([&](auto i) {
    static_assert(i() >= 0 && i() < 5);
    seen.push_back(i());
  });
  CHECK(seen == std::vector<int>{0, 1, 2, 3, 4});
  d::unroll<0>([&](auto) { seen.clear(); });
  CHECK(seen.size() == 5);
}
