// Flat projection of one block, the library's hot path: (3 + 2k) * d elements minimal traffic.
#include <vector>

#include <ogpsa/ogpsa.hpp>

#include "bench.hpp"

namespace {

void flat_projection(benchmark::State& state) {
  const auto d = static_cast<ogpsa::index_t>(state.range(0));
  const auto k = static_cast<ogpsa::index_t>(state.range(1));
  std::vector<float> g(static_cast<std::size_t>(d), 1.0f);
  ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::fixed_basis> p(ogpsa::exact_svd{.rank = k});
  const auto id = p.add_block("w", ogpsa::view(g));
  p.begin_reference_pass();
  std::vector<float> r(g.size());
  for (ogpsa::index_t j = 0; j < k; ++j) {
    for (std::size_t i = 0; i < r.size(); ++i) r[i] = static_cast<float>((i * (j + 3)) % 11) - 5.0f;
    p.feed(id, ogpsa::view(std::as_const(r)));
  }
  p.finish_reference_pass();
  for (auto _ : state) {
    p.project();
    benchmark::DoNotOptimize(g.data());
  }
  ogpsa::bench::set_traffic(state, static_cast<double>((3 + 2 * k) * d) * sizeof(float));
}

}  // namespace

BENCHMARK(flat_projection)
    ->ArgsProduct({{1 << 10, 1 << 20, 1 << 24}, {1, 2, 8}})
    ->Unit(benchmark::kMicrosecond);
