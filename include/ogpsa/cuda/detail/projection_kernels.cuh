#pragma once
/// \file
/// The kernels of a many-block projection (planned by `projection_plan.hpp`):
///
/// 1. `reduce_kernel`: per chunk of every flat block, the k partial sums u_j^T x (and |x|^2 for
///    diagnostics) in one pass over x, accumulated in the accumulator type (fp32 at least);
/// 2. `build_basis_kernel`: matrix-side bases converted or split into the GEMM operand;
/// 3. `sum_partials_kernel`: per value of every reduction, its chunk sums added in a fixed
///    order, and `pack_kernel`: the GEMM's products (the halves of a split basis added), into
///    the packed coefficients, which an all-reduce may then sum across ranks;
/// 4. `rule_kernel`: per target column, the rule applied (on the device, through its
///    `OGPSA_HOST_DEVICE apply`); `flags_kernel`: per block, the flags and diagnostics;
///    `operand_kernel`: the matrix-side update GEMMs' coefficient operands;
/// 5. `compact_kernel`: the matrix-side blocks that need an update, per batched GEMM;
/// 6. `update_kernel`: x <- s x - U r for every flat block that changed, in a second pass;
/// 7. with diagnostics, kernels 1 and 3 once more over the projected blocks (their measures), and
///    `measure_kernel`: per block, |x_after|^2 and |U^T x_after|^2 into its record.
///
/// The packing and rule kernels run one block per chunk of `column_chunk` target columns, so
/// the work of a wide matrix-side block spreads over the whole device.
///
/// Work is split into chunks of `chunk_elements` per block; a block finds its entry by binary
/// search over the entries' first chunks, so one launch covers any number of blocks.

#include <type_traits>

#include <cuda_runtime.h>

#include "ogpsa/config.hpp"
#include "ogpsa/cuda/detail/device_math.cuh"
#include "ogpsa/cuda/detail/element_cast.hpp"
#include "ogpsa/cuda/detail/projection_plan.hpp"

namespace ogpsa::cuda::detail {

/// Basis columns reduced together in one pass over a chunk of x; wider bases take several passes
/// over the chunk, which then comes from the cache.
inline constexpr int reduce_columns = 8;

/// The entry whose chunks contain chunk `c` (entries sorted by first_chunk, the first at 0).
__device__ inline const reduce_entry& entry_of(const reduce_entry* entries, int count, index_t c) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (entries[mid].first_chunk <= c) lo = mid;
    else hi = mid - 1;
  }
  return entries[lo];
}

/// The end of a chunk: its nominal end, or the end of the data for the last chunk.
__device__ inline index_t last_of_chunk(index_t nominal, index_t size) { return nominal < size ? nominal : size; }

/// Sums of one pass over a chunk: u_j^T x for columns [j0, j0 + columns) and, when `norm`,
/// |x|^2 (in sums[reduce_columns]).
template <class G, class B, class Acc>
__device__ void reduce_chunk(const reduce_entry& e, index_t begin, index_t end, int j0, int columns,
                             bool norm, Acc (&sums)[reduce_columns + 1]) {
  constexpr int V = packet_width<G, B>;
  const G* x = static_cast<const G*>(e.x);
  const B* u = static_cast<const B*>(e.u);
  const auto add_packet = [&](const packet<G, V>& xp, index_t i) {
    Acc xv[V];
#pragma unroll
    for (int v = 0; v < V; ++v) xv[v] = element_cast<Acc>(xp.v[v]);
    if (norm)
#pragma unroll
      for (int v = 0; v < V; ++v) sums[reduce_columns] += xv[v] * xv[v];
#pragma unroll
    for (int j = 0; j < reduce_columns; ++j) {
      if (j >= columns) break;
      const packet<B, V> up = load_packet<V>(u + (j0 + j) * e.ld + i);
#pragma unroll
      for (int v = 0; v < V; ++v) sums[j] += xv[v] * element_cast<Acc>(up.v[v]);
    }
  };
  if (e.packets) {
    for (int step = 0; step < chunk_steps; ++step) {
      const index_t i = begin + (index_t{step} * blockDim.x + threadIdx.x) * V;
      if (i >= end) break;
      add_packet(load_packet<V>(x + i), i);
    }
    return;
  }
  if (e.shift > 0) {  // x between packet boundaries, u on them: x's packets shifted across lanes
    for (int step = 0; step < chunk_steps; ++step) {
      const index_t i = begin + (index_t{step} * blockDim.x + threadIdx.x) * V;
      const bool active = i < end;
      if (!__any_sync(0xffffffffu, active)) break;  // whole warps only: the shuffle needs every lane
      const packet<G, V> xp = load_shifted_packet<V>(x, i, e.shift, active, i + V < end);
      if (active) add_packet(xp, i);
    }
    return;
  }
  for (index_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const index_t at = e.outer == 1 ? i : (i / e.inner) * e.outer_stride + i % e.inner;
    const Acc xv = element_cast<Acc>(x[at]);
    if (norm) sums[reduce_columns] += xv * xv;
#pragma unroll
    for (int j = 0; j < reduce_columns; ++j) {
      if (j >= columns) break;
      sums[j] += xv * element_cast<Acc>(u[(j0 + j) * e.ld + i]);
    }
  }
}

/// One block per chunk: writes the chunk's partial sums, value-major per entry
/// (partials[e.partials + value * e.chunks + chunk]), so that the pack kernel reads them
/// coalesced.
template <class G, class B, class Acc>
__global__ void __launch_bounds__(block_threads) reduce_kernel(const reduce_entry* entries, int count, Acc* partials) {
  __shared__ Acc shared[(reduce_columns + 1) * warp_threads];
  const reduce_entry e = entry_of(entries, count, blockIdx.x);
  const index_t chunk = blockIdx.x - e.first_chunk;
  const index_t begin = chunk * chunk_elements<G, B>;
  const index_t end = last_of_chunk(begin + chunk_elements<G, B>, e.inner * e.outer);
  const bool norm = e.values > e.k;
  const int passes = e.k == 0 ? 1 : (e.k + reduce_columns - 1) / reduce_columns;
  for (int pass = 0; pass < passes; ++pass) {
    const int j0 = pass * reduce_columns;
    const int columns = e.k - j0 < reduce_columns ? e.k - j0 : reduce_columns;
    const bool with_norm = norm && pass == 0;
    Acc sums[reduce_columns + 1] = {};
    reduce_chunk<G, B, Acc>(e, begin, end, j0, columns, with_norm, sums);
    block_sum(sums, shared);
    if (threadIdx.x != 0) continue;
    for (int j = 0; j < columns; ++j) partials[e.partials + (j0 + j) * e.chunks + chunk] = sums[j];
    if (with_norm) partials[e.partials + e.k * e.chunks + chunk] = sums[reduce_columns];
  }
}

/// Builds each matrix-side basis operand [part(t) of U for t < terms] (rows x terms * k).
template <class G, class B>
__global__ void build_basis_kernel(const basis_entry* entries, int count) {
  using gemm = gemm_plan<G, B>;
  using E = typename gemm::gemm_type;
  using W = std::conditional_t<std::is_same_v<B, double>, double, float>;
  for (int b = blockIdx.y; b < count; b += gridDim.y) {
    const basis_entry e = entries[b];
    const B* u = static_cast<const B*>(e.u);
    E* operand = static_cast<E*>(e.operand);
    const index_t size = e.rows * e.k;
    for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < size; i += index_t{gridDim.x} * blockDim.x) {
      const W value = element_cast<W>(u[i]);
#pragma unroll
      for (int t = 0; t < gemm::terms; ++t) operand[t * size + i] = split_part<E>(value, gemm::basis_part(t));
    }
  }
}

/// The index of the slot whose column chunks contain chunk `c` (slots sorted by
/// first_column_chunk).
__device__ inline int slot_of(const slot_entry* slots, int count, index_t c) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (slots[mid].first_column_chunk <= c) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/// One block per value of every reduce entry: the value's chunk sums added in a fixed order
/// (strided over the threads in double, then across them) into the packed buffer: a flat
/// block's coefficient, or a block's |x|^2 with diagnostics. One block per value rather than per
/// entry, so that a large flat block's sums (values x chunks of them) spread over the device.
template <class Acc>
__global__ void __launch_bounds__(block_threads)
sum_partials_kernel(const reduce_entry* entries, int count, const slot_entry* slots, const Acc* partials, Acc* packed) {
  __shared__ double shared[warp_threads];
  int lo = 0, hi = count - 1;  // the entry whose values contain this block's
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (entries[mid].first_value <= blockIdx.x) lo = mid;
    else hi = mid - 1;
  }
  const reduce_entry e = entries[lo];
  const auto v = static_cast<int>(blockIdx.x - e.first_value);
  const Acc* p = partials + e.partials + v * e.chunks;
  double total[1] = {0};
  for (index_t c = threadIdx.x; c < e.chunks; c += blockDim.x) total[0] += static_cast<double>(p[c]);
  block_sum(total, shared);
  if (threadIdx.x != 0) return;
  const slot_entry& s = slots[e.slot];
  packed[v < e.k ? s.packed + v : s.norm] = static_cast<Acc>(total[0]);
}

/// One block per column chunk of a matrix-side slot: the GEMM's products for the chunk's
/// columns moved into the packed buffer, the hi and lo halves of a split basis added.
template <class Acc>
__global__ void __launch_bounds__(block_threads)
pack_kernel(const slot_entry* slots, int count, const Acc* products, Acc* packed) {
  const slot_entry s = slots[slot_of(slots, count, blockIdx.x)];
  if (s.products < 0) return;
  const index_t chunk = blockIdx.x - s.first_column_chunk;
  const index_t first = chunk * column_chunk * s.k;
  const index_t last = (chunk + 1) * column_chunk < s.cols ? (chunk + 1) * column_chunk * s.k : s.cols * s.k;
  const index_t height = s.parts * s.k;
  for (index_t i = first + threadIdx.x; i < last; i += blockDim.x) {
    const Acc* product = products + s.products + (i / s.k) * height + i % s.k;
    packed[s.packed + i] = s.parts == 2 ? product[0] + product[s.k] : product[0];
  }
}

/// One block per column chunk, one thread per column: the rule applied to the packed
/// coefficients (r in the working copy, the original c below it), the largest exponent of r of
/// each batched GEMM call kept (types whose coefficients are scaled), and the chunk's sums for
/// `flags_kernel`. The thread with the slot's last column records its scale (the only column of
/// a flat block). The chunk's coefficients are contiguous in both buffers, so the block first
/// copies them in one coalesced sweep; each thread then works on its own column, k elements
/// apart from its neighbours', in lines the block has just written.
template <class G, class B, class Rule>
__global__ void __launch_bounds__(block_threads)
rule_kernel(const slot_entry* slots, int count, const typename gemm_plan<G, B>::accumulator* packed,
            typename gemm_plan<G, B>::accumulator* work, int* exponents,
            typename gemm_plan<G, B>::accumulator* scales, double* chunk_sums, Rule rule) {
  using gemm = gemm_plan<G, B>;
  using Acc = typename gemm::accumulator;
  __shared__ double shared[rule_sums * warp_threads];
  const int slot = slot_of(slots, count, blockIdx.x);
  const slot_entry s = slots[slot];
  const index_t k = s.k;
  const index_t first = (blockIdx.x - s.first_column_chunk) * column_chunk;
  const index_t col = first + threadIdx.x;
  const index_t chunk_values = (s.cols - first < column_chunk ? s.cols - first : column_chunk) * k;
  const Acc* chunk_c = packed + s.packed + first * k;
  Acc* chunk_work = work + s.work + first * 2 * k;
  for (index_t e = threadIdx.x; e < chunk_values; e += blockDim.x) {
    Acc* column = chunk_work + (e / k) * 2 * k;
    column[e % k] = column[k + e % k] = chunk_c[e];
  }
  __syncthreads();
  double sums[rule_sums] = {};
  if (col < s.cols) {
    Acc* r = work + s.work + col * 2 * k;
    const Acc* c = r + k;
    for (index_t i = 0; i < k; ++i) {
      sums[non_finite] += isfinite(c[i]) ? 0.0 : 1.0;
      sums[coefficient_sq] += static_cast<double>(c[i]) * static_cast<double>(c[i]);
    }
    const Acc scale = rule.apply(r, k);
    sums[removed_any] += scale != Acc(1) ? 1.0 : 0.0;
    for (index_t i = 0; i < k; ++i) {
      const double removed = static_cast<double>(r[i]), original = static_cast<double>(r[k + i]);
      const double part = (1 - static_cast<double>(scale)) * original + removed;
      sums[removed_any] += removed != 0 ? 1.0 : 0.0;
      sums[removed_sq] += part * part;
    }
    if (col == s.cols - 1) scales[slot] = scale;
    if constexpr (gemm::scaled_coefficients) {
      if (s.matrix) {
        float largest = 0;
        for (index_t i = 0; i < k; ++i) largest = fmaxf(largest, fabsf(static_cast<float>(r[i])));
        atomicMax(exponents + s.group, gemm::biased_exponent(largest));
      }
    }
  }
  block_sum(sums, shared);
  if (threadIdx.x == 0)
    for (int i = 0; i < rule_sums; ++i) chunk_sums[blockIdx.x * index_t{rule_sums} + i] = sums[i];
}

/// One block per column chunk of a matrix-side block, one thread per element of the chunk's
/// part of the update GEMM's coefficient operand [part(t) of scale r for each term t] (written
/// in order, so coalesced), with the scale of its call; zero for a block not to be changed
/// (unchanged or not finite), so that a GEMM over it adds zero.
template <class G, class B>
__global__ void __launch_bounds__(block_threads)
operand_kernel(const slot_entry* slots, int count, const typename gemm_plan<G, B>::accumulator* work,
               const int* exponents, const std::uint8_t* flags, typename gemm_plan<G, B>::gemm_type* update) {
  using gemm = gemm_plan<G, B>;
  using Acc = typename gemm::accumulator;
  using E = typename gemm::gemm_type;
  const int slot = slot_of(slots, count, blockIdx.x);
  const slot_entry s = slots[slot];
  if (!s.matrix) return;
  const index_t k = s.k, height = gemm::terms * k;
  const index_t first = (blockIdx.x - s.first_column_chunk) * column_chunk;
  const index_t values = (s.cols - first < column_chunk ? s.cols - first : column_chunk) * height;
  E* operand = update + s.update + first * height;
  const bool write = flags[slot] == (flag_finite | flag_changed);
  const Acc scale = static_cast<Acc>(gemm::coefficient_scale(exponents[s.group]));
  const Acc* r = work + s.work + first * 2 * k;
  for (index_t e = threadIdx.x; e < values; e += blockDim.x) {
    const index_t col = e / height, t = (e % height) / k, i = e % k;
    operand[e] = write ? split_part<E>(r[col * 2 * k + i] * scale, gemm::coefficient_part(static_cast<int>(t)))
                       : element_cast<E>(0.0f);
  }
}

/// One thread per batched GEMM call: its alpha, -1 over the scale of its coefficients (what the
/// host computes when it reads the exponents back), then beta = 1 after the last.
template <class G, class B>
__global__ void scalars_kernel(const int* exponents, int groups, typename gemm_plan<G, B>::cublas_accumulator* scalars) {
  using gemm = gemm_plan<G, B>;
  using scalar = typename gemm::cublas_accumulator;
  for (int g = blockIdx.x * blockDim.x + threadIdx.x; g <= groups; g += gridDim.x * blockDim.x)
    scalars[g] = g == groups ? scalar(1) : -1 / static_cast<scalar>(gemm::coefficient_scale(exponents[g]));
}

/// One block per slot: its chunks' sums added in a fixed order, then the slot's flags and, with
/// diagnostics, its record: what the rule removes, |(1 - s) x + U r|^2, as its part in the
/// subspace plus (1 - s)^2 (|x|^2 - |c|^2) outside it (only one-column slots scale), and the
/// numbers of x itself as those after, which `measure_kernel` replaces for the slots written.
template <class Acc>
__global__ void __launch_bounds__(block_threads)
flags_kernel(const slot_entry* slots, const Acc* packed, const Acc* scales, const double* chunk_sums,
             projection_record* records, std::uint8_t* flags, bool diagnostics) {
  __shared__ double shared[rule_sums * warp_threads];
  const slot_entry s = slots[blockIdx.x];
  double sums[rule_sums] = {};
  for (index_t c = threadIdx.x; c < s.column_chunks; c += blockDim.x)
    for (int i = 0; i < rule_sums; ++i) sums[i] += chunk_sums[(s.first_column_chunk + c) * rule_sums + i];
  block_sum(sums, shared);
  if (threadIdx.x != 0) return;
  const double gradient_sq = diagnostics ? static_cast<double>(packed[s.norm]) : -1.0;
  const bool finite = sums[non_finite] == 0 && (!diagnostics || isfinite(gradient_sq));
  const bool changed = finite && sums[removed_any] > 0;
  flags[blockIdx.x] = static_cast<std::uint8_t>((finite ? flag_finite : 0) | (changed ? flag_changed : 0));
  if (!diagnostics) return;
  const double scale = static_cast<double>(scales[blockIdx.x]);
  const double outside = gradient_sq > sums[coefficient_sq] ? gradient_sq - sums[coefficient_sq] : 0.0;
  const double removed = sums[removed_sq] + (s.cols == 1 ? (1 - scale) * (1 - scale) * outside : 0.0);
  records[blockIdx.x] = finite ? projection_record{gradient_sq, sums[coefficient_sq], removed, gradient_sq,
                                                   sums[coefficient_sq], scale}
                               : projection_record{gradient_sq, 0, 0, 0, 0, 1};
}

/// One block per slot written, with diagnostics: its record's |x_after|^2 and |U^T x_after|^2 from
/// the measures packed after the update (the other slots keep the numbers of x itself).
template <class Acc>
__global__ void __launch_bounds__(block_threads)
measure_kernel(const slot_entry* slots, const Acc* measures, const std::uint8_t* flags, projection_record* records) {
  __shared__ double shared[warp_threads];
  if (flags[blockIdx.x] != (flag_finite | flag_changed)) return;
  const slot_entry s = slots[blockIdx.x];
  double sum[1] = {0};
  for (index_t i = threadIdx.x; i < s.k * s.cols; i += blockDim.x) {
    const double c = static_cast<double>(measures[s.packed + i]);
    sum[0] += c * c;
  }
  block_sum(sum, shared);
  if (threadIdx.x != 0) return;
  records[blockIdx.x].projected_sq = static_cast<double>(measures[s.norm]);
  records[blockIdx.x].remaining_coefficient_sq = sum[0];
}

/// One thread per batched GEMM call: packs the members that changed to the front of the
/// call's pointer arrays, in member order (the host counts them from the flags).
template <class Flag>
__global__ void compact_kernel(const group_entry* groups, int count, const int* member_slot, const void* const* basis,
                               const void* const* update, void* const* target, const Flag* flags,
                               const void** basis_out, const void** update_out, void** target_out) {
  for (int g = blockIdx.x * blockDim.x + threadIdx.x; g < count; g += gridDim.x * blockDim.x) {
    int out = groups[g].first;
    for (int m = groups[g].first; m < groups[g].first + groups[g].count; ++m) {
      if (flags[member_slot[m]] != (flag_finite | flag_changed)) continue;
      basis_out[out] = basis[m];
      update_out[out] = update[m];
      target_out[out] = target[m];
      ++out;
    }
  }
}

/// x <- s x - sum_j r_j u_j over one chunk, computed in the accumulator and rounded once.
template <class G, class B, class Acc>
__device__ void update_chunk(const reduce_entry& e, index_t begin, index_t end, const Acc* r, Acc scale) {
  constexpr int V = packet_width<G, B>;
  G* x = static_cast<G*>(e.x);
  const B* u = static_cast<const B*>(e.u);
  const int k = e.k;
  if (e.packets) {
    for (int step = 0; step < chunk_steps; ++step) {
      const index_t i = begin + (index_t{step} * blockDim.x + threadIdx.x) * V;
      if (i >= end) break;
      packet<G, V> xp = load_packet<V>(x + i);
      Acc value[V];
#pragma unroll
      for (int v = 0; v < V; ++v) value[v] = element_cast<Acc>(xp.v[v]) * scale;
#pragma unroll 4
      for (int j = 0; j < k; ++j) {
        const Acc rj = r[j];
        const packet<B, V> up = load_packet<V>(u + j * e.ld + i);
#pragma unroll
        for (int v = 0; v < V; ++v) value[v] -= rj * element_cast<Acc>(up.v[v]);
      }
#pragma unroll
      for (int v = 0; v < V; ++v) xp.v[v] = element_cast<G>(value[v]);
      store_packet<V>(x + i, xp);
    }
    return;
  }
  for (index_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    Acc value = element_cast<Acc>(x[i]) * scale;
    for (int j = 0; j < k; ++j) value -= r[j] * element_cast<Acc>(u[j * e.ld + i]);
    x[i] = element_cast<G>(value);
  }
}

/// One block per chunk of the flat entries; blocks whose slot is unchanged or non-finite write
/// nothing.
template <class G, class B>
__global__ void __launch_bounds__(block_threads)
update_kernel(const reduce_entry* entries, int count, const slot_entry* slots,
              const typename gemm_plan<G, B>::accumulator* work,
              const typename gemm_plan<G, B>::accumulator* scales, const std::uint8_t* flags) {
  const reduce_entry e = entry_of(entries, count, blockIdx.x);
  if (flags[e.slot] != (flag_finite | flag_changed)) return;
  const index_t begin = (blockIdx.x - e.first_chunk) * chunk_elements<G, B>;
  const index_t end = last_of_chunk(begin + chunk_elements<G, B>, e.inner);
  update_chunk<G, B>(e, begin, end, work + slots[e.slot].work, scales[e.slot]);
}

}  // namespace ogpsa::cuda::detail
