#pragma once
/// \file
/// Building blocks of the backend's kernels: aligned vector loads (also of data that starts
/// between packet boundaries) and deterministic block-wide sums.

#include <cstring>
#include <utility>

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

/// The packet of lane (this lane + delta) of the warp; every lane must call it.
template <int V, class T>
__device__ inline packet<T, V> shuffle_down(const packet<T, V>& p, int delta) {
  constexpr int words = sizeof(packet<T, V>) / sizeof(unsigned);
  static_assert(sizeof(packet<T, V>) % sizeof(unsigned) == 0, "packets move through shuffles as 32-bit words");
  unsigned w[words];
  memcpy(w, &p, sizeof p);
#pragma unroll
  for (int i = 0; i < words; ++i) w[i] = __shfl_down_sync(0xffffffffu, w[i], delta);
  packet<T, V> out;
  memcpy(&out, w, sizeof out);
  return out;
}

/// Elements [S, S + V) of the 2V elements of a then b.
template <int S, int V, class T>
__device__ inline packet<T, V> funnel(const packet<T, V>& a, const packet<T, V>& b) {
  packet<T, V> out;
#pragma unroll
  for (int v = 0; v < V; ++v) out.v[v] = v + S < V ? a.v[(v + S) % V] : b.v[(v + S) % V];
  return out;
}

template <int V, class T, int... S>
__device__ inline packet<T, V> funnel(const packet<T, V>& a, const packet<T, V>& b, int shift,
                                      std::integer_sequence<int, S...>) {
  packet<T, V> out = a;
  ((shift == S ? void(out = funnel<S, V>(a, b)) : void()), ...);
  return out;
}

/// The V elements at x + i where x + i - shift (not x + i) is aligned to the packet: the two
/// aligned packets that hold them, this lane's and the next lane's (shuffled over, or loaded here
/// when the next lane has none: the warp's last lane, or `next_active` false), shifted together.
/// Every loaded packet holds at least one of the wanted elements, so nothing is read outside the
/// 16-byte segments of the data. Every lane of the warp must call it; inactive lanes load nothing.
template <int V, class T>
__device__ inline packet<T, V> load_shifted_packet(const T* x, index_t i, int shift, bool active, bool next_active) {
  const T* at = x + i - shift;
  const packet<T, V> here = active ? load_packet<V>(at) : packet<T, V>{};
  packet<T, V> next = shuffle_down<V>(here, 1);
  if (active && (threadIdx.x % warp_threads == warp_threads - 1 || !next_active)) next = load_packet<V>(at + V);
  return funnel<V>(here, next, shift, std::make_integer_sequence<int, V>{});
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
