#pragma once
// Helpers of the CUDA benchmarks: timing with CUDA events, and device data made on the device.

#include <cmath>
#include <cstdint>

#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <ogpsa/cuda.cuh>

#include "bench.hpp"

namespace ogpsa::bench::cuda {

using ogpsa::cuda::device_matrix;
using ogpsa::cuda::execution;

/// Runs `work` once per iteration and reports the time the stream took (Google Benchmark's
/// manual time), so host overheads count only where they stall the device.
template <class F>
void time_on_device(benchmark::State& state, execution& exec, F&& work) {
  cudaEvent_t start = nullptr, stop = nullptr;
  OGPSA_CUDA_CHECK("bench", cudaEventCreate(&start));
  OGPSA_CUDA_CHECK("bench", cudaEventCreate(&stop));
  work();  // warm: workspaces sized, handles created
  exec.synchronize();
  for (auto _ : state) {
    OGPSA_CUDA_CHECK("bench", cudaEventRecord(start, exec.stream()));
    work();
    OGPSA_CUDA_CHECK("bench", cudaEventRecord(stop, exec.stream()));
    OGPSA_CUDA_CHECK("bench", cudaEventSynchronize(stop));
    float ms = 0;
    OGPSA_CUDA_CHECK("bench", cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(static_cast<double>(ms) * 1e-3);
  }
  (void)cudaEventDestroy(start);
  (void)cudaEventDestroy(stop);
}

OGPSA_HOST_DEVICE std::uint64_t mix(std::uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// Uniform values in [-1, 1).
template <class T>
__global__ void fill_uniform(T* p, index_t n, std::uint64_t seed) {
  for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < n; i += index_t{gridDim.x} * blockDim.x)
    p[i] = T(static_cast<float>(mix(seed + static_cast<std::uint64_t>(i)) >> 40) * 0x1p-23f - 1.0f);
}

/// An orthonormal basis with disjoint supports: column j holds +-1/sqrt(|S_j|) on the rows
/// i = j (mod k). Projection traffic does not depend on the values, and this costs one pass.
template <class T>
__global__ void fill_disjoint_basis(T* u, index_t rows, index_t k, std::uint64_t seed) {
  for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < rows * k; i += index_t{gridDim.x} * blockDim.x) {
    const index_t row = i % rows, col = i / rows;
    const index_t support = rows / k + (col < rows % k ? 1 : 0);
    const float value = row % k == col ? (mix(seed + static_cast<std::uint64_t>(row)) & 1 ? 1.0f : -1.0f) / sqrtf(static_cast<float>(support)) : 0.0f;
    u[i] = T(value);
  }
}

template <class T>
device_matrix<T> random_matrix(execution& exec, index_t rows, index_t cols, std::uint64_t seed) {
  device_matrix<T> m(rows, cols, exec.stream());
  fill_uniform<<<ogpsa::cuda::detail::grid_blocks(m.size()), 256, 0, exec.stream()>>>(m.data(), m.size(), seed);
  ogpsa::cuda::detail::check_launch("bench", "fill_uniform");
  return m;
}

template <class T>
device_matrix<T> disjoint_basis(execution& exec, index_t rows, index_t k, std::uint64_t seed) {
  device_matrix<T> m(rows, k, exec.stream());
  fill_disjoint_basis<<<ogpsa::cuda::detail::grid_blocks(m.size()), 256, 0, exec.stream()>>>(m.data(), rows, k, seed);
  ogpsa::cuda::detail::check_launch("bench", "fill_disjoint_basis");
  return m;
}

}  // namespace ogpsa::bench::cuda
