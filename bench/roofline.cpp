// The machine's own memory roofline: a STREAM-style copy over the same sizes the projections use.
#include <algorithm>
#include <vector>

#include "bench.hpp"

namespace {

void copy(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<float> a(n, 1.0f), b(n, 0.0f);
  for (auto _ : state) {
    std::copy(a.begin(), a.end(), b.begin());
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
  }
  ogpsa::bench::set_traffic(state, 2.0 * sizeof(float) * static_cast<double>(n));  // read a, write b
}

}  // namespace

BENCHMARK(copy)->Arg(1 << 10)->Arg(1 << 20)->Arg(1 << 24)->Unit(benchmark::kMicrosecond);
