#pragma once
/// \file
/// Building blocks of the backend's kernels: aligned vector loads and deterministic block-wide
/// sums.

#include <cuda_runtime.h>

#include "ogpsa/config.hpp"
#include "ogpsa/cuda/detail/launch.hpp"

namespace ogpsa::cuda::detail {

/// V consecutive elements loaded or stored in one instruction (V * sizeof(T) <= 16 bytes, a
/// power of two); the address must be aligned to the packet size.
template <class T, int V>
struct alignas(sizeof(T) * V) packet {
  T v[V];
};

template <int V, class T>
__device__ inline packet<T, V> load_packet(const T* p) {
  return *reinterpret_cast<const packet<T, V>*>(p);
}

template <int V, class T>
__device__ inline void store_packet(T* p, const packet<T, V>& value) {
  *reinterpret_cast<packet<T, V>*>(p) = value;
}

template <class T>
__device__ inline T warp_sum(T v) {
  for (int offset = warp_threads / 2; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

/// Sums N values over the block in a fixed order (so results do not vary between runs); the
/// sums are valid in thread 0. `shared` holds N * warp_threads values. Every thread of the block
/// must call it; it ends with a barrier, so `shared` may be reused right after.
template <int N, class T>
__device__ void block_sum(T (&v)[N], T* shared) {
  const int lane = threadIdx.x % warp_threads, warp = threadIdx.x / warp_threads;
  const int warps = (blockDim.x + warp_threads - 1) / warp_threads;
#pragma unroll
  for (int i = 0; i < N; ++i) v[i] = warp_sum(v[i]);
  if (lane == 0)
#pragma unroll
    for (int i = 0; i < N; ++i) shared[warp * N + i] = v[i];
  __syncthreads();
  if (warp == 0)
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = warp_sum(lane < warps ? shared[lane * N + i] : T(0));
  __syncthreads();
}

}  // namespace ogpsa::cuda::detail
