#pragma once
// Shared benchmark helpers: byte counters under the minimal-traffic model.

#include <cstdint>

#include <benchmark/benchmark.h>

namespace ogpsa::bench {

/// Reports bytes moved per iteration as a rate (GB/s in the console, bytes_per_second in JSON).
inline void set_traffic(benchmark::State& state, double bytes_per_iteration) {
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes_per_iteration) *
                          static_cast<std::int64_t>(state.iterations()));
}

}  // namespace ogpsa::bench
