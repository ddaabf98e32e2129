// The machine's own memory roofline, on every core: a STREAM-style copy and triad at the sizes
// the projections use (1M and 16M elements, a 4096 x 11008 matrix, the whole model).
#include <algorithm>
#include <vector>

#include <ogpsa/cpu/detail/parallel.hpp>

#include "bench.hpp"

namespace ogpsa::bench {
namespace {

struct arrays {
  std::vector<float> a, b, c;
  explicit arrays(index_t n)
      : a(static_cast<std::size_t>(n), 1.0f), b(static_cast<std::size_t>(n), 2.0f), c(static_cast<std::size_t>(n), 3.0f) {}
  std::size_t bytes() const { return (a.size() + b.size() + c.size()) * sizeof(float); }
};

/// Runs f(first, last) on equal parts of [0, n), one per thread of the same team size ogpsa uses.
template <class F>
void split(index_t n, F f) {
  cpu::detail::run_team(cpu::max_threads({}), [&](int member, int members) {
    f(n * member / members, n * (member + 1) / members);
  });
}

void copy(benchmark::State& state) {
  const index_t n = state.range(0);
  rotation<arrays>& data = shared_data<arrays>("roofline/" + std::to_string(n), n);
  for (auto _ : state) {
    arrays& x = data.next();
    split(n, [&](index_t first, index_t last) { std::copy(x.a.data() + first, x.a.data() + last, x.b.data() + first); });
    benchmark::ClobberMemory();
  }
  set_traffic(state, 2.0 * sizeof(float) * static_cast<double>(n), static_cast<double>(n));
}

void triad(benchmark::State& state) {
  const index_t n = state.range(0);
  rotation<arrays>& data = shared_data<arrays>("roofline/" + std::to_string(n), n);
  const float s = 0.5f;
  for (auto _ : state) {
    arrays& x = data.next();
    split(n, [&](index_t first, index_t last) {
      for (index_t i = first; i < last; ++i) x.a[static_cast<std::size_t>(i)] = x.b[static_cast<std::size_t>(i)] + s * x.c[static_cast<std::size_t>(i)];
    });
    benchmark::ClobberMemory();
  }
  set_traffic(state, 3.0 * sizeof(float) * static_cast<double>(n), static_cast<double>(n));
}

std::vector<std::vector<std::int64_t>> roofline_sizes() {
  std::vector<std::vector<std::int64_t>> sizes;
  for (index_t d : flat_sizes) sizes.push_back({d});
  sizes.push_back({4096 * 11008});
  sizes.push_back({total_size(decoder_tensors())});
  return sizes;
}

const bool registered = add({"roofline", "copy", "", copy, roofline_sizes(), {"n"}}) &&
                        add({"roofline", "triad", "", triad, roofline_sizes(), {"n"}});

}  // namespace
}  // namespace ogpsa::bench
