#pragma once
/// \file
/// Element-wise kernels of the estimator primitives: strided copies with type conversion (and
/// transposition), accumulation, the finiteness check and the column updates of Gram-Schmidt.

#include <cstddef>
#include <span>
#include <type_traits>

#include <cuda_runtime.h>

#include "ogpsa/config.hpp"
#include "ogpsa/cuda/detail/device_math.cuh"
#include "ogpsa/cuda/detail/device_ref.hpp"
#include "ogpsa/cuda/detail/element_cast.hpp"
#include "ogpsa/cuda/detail/stacked_sources.hpp"
#include "ogpsa/cuda/error.hpp"
#include "ogpsa/cuda/execution.hpp"

namespace ogpsa::cuda::detail {

/// dst(i, j) = src(i, j) or dst(i, j) += src(i, j), converting; dst is column-major with
/// leading dimension ld.
template <bool Add, class To, class From>
__device__ inline void put(To* dst, From value) {
  if constexpr (Add) {
    static_assert(std::is_floating_point_v<To>, "accumulating copies target float or double");
    *dst = *dst + element_cast<To>(value);
  } else {
    *dst = element_cast<To>(value);
  }
}

/// Column-major source: consecutive threads walk down a column, so reads and writes coalesce.
template <bool Add, class To, class From>
__global__ void columns_kernel(const From* src, index_t rows, index_t cols, index_t col_stride, To* dst,
                               index_t ld) {
  for (index_t j = blockIdx.y; j < cols; j += gridDim.y)
    for (index_t i = blockIdx.x * index_t(blockDim.x) + threadIdx.x; i < rows; i += index_t(gridDim.x) * blockDim.x)
      put<Add>(dst + j * ld + i, src[j * col_stride + i]);
}

inline constexpr int tile = 32;       // transpose tile edge
inline constexpr int tile_rows = 8;   // threads per tile column: a tile_rows x tile block

/// Row-major source: a shared-memory tile turns row-wise reads into column-wise writes, so both
/// coalesce. The padding column keeps the tile's column reads free of bank conflicts.
template <bool Add, class To, class From>
__global__ void rows_kernel(const From* src, index_t rows, index_t cols, index_t row_stride, To* dst,
                            index_t ld) {
  __shared__ From block[tile][tile + 1];
  for (index_t i0 = index_t(blockIdx.y) * tile; i0 < rows; i0 += index_t(gridDim.y) * tile)
    for (index_t j0 = index_t(blockIdx.x) * tile; j0 < cols; j0 += index_t(gridDim.x) * tile) {
      for (int r = threadIdx.y; r < tile; r += tile_rows) {
        const index_t i = i0 + r, j = j0 + threadIdx.x;
        if (i < rows && j < cols) block[r][threadIdx.x] = src[i * row_stride + j];
      }
      __syncthreads();
      for (int c = threadIdx.y; c < tile; c += tile_rows) {
        const index_t i = i0 + threadIdx.x, j = j0 + c;
        if (i < rows && j < cols) put<Add>(dst + j * ld + i, block[threadIdx.x][c]);
      }
      __syncthreads();
    }
}

/// Writes (or, with Add, accumulates) src converted into the column-major dst (leading
/// dimension ld), whatever src's orientation.
template <bool Add, class To, class From>
void convert_into(execution& exec, const device_ref<const From>& src, To* dst, index_t ld, const char* where) {
  if (src.size() == 0) return;
  if (src.column_major()) {
    columns_kernel<Add><<<grid_2d(src.rows, src.cols), block_threads, 0, exec.stream()>>>(
        src.data, src.rows, src.cols, src.col_stride, dst, ld);
  } else {
    const index_t tiles_down = (src.rows + tile - 1) / tile, tiles_across = (src.cols + tile - 1) / tile;
    const dim3 grid(static_cast<unsigned>(std::min<index_t>(tiles_across, 1024)),
                    static_cast<unsigned>(std::min<index_t>(tiles_down, 1024)));
    rows_kernel<Add><<<grid, dim3(tile, tile_rows), 0, exec.stream()>>>(src.data, src.rows, src.cols,
                                                                         src.row_stride, dst, ld);
  }
  check_launch(where, "ogpsa's strided conversion kernel");
}

/// One launch of `stack_columns`: column j of the batch, found among at most `stack_parts` parts,
/// converted into column j of dst.
template <class To, class From>
__global__ void stacked_columns_kernel(const stacked_sources<From> parts, index_t rows, To* dst, index_t ld) {
  const index_t cols = parts.first_col[parts.count];
  for (index_t j = blockIdx.y; j < cols; j += gridDim.y) {
    int p = 0;
    while (parts.first_col[p + 1] <= j) ++p;
    const From* src = parts.data[p] + (j - parts.first_col[p]) * parts.col_stride[p];
    for (index_t i = blockIdx.x * index_t(blockDim.x) + threadIdx.x; i < rows; i += index_t(gridDim.x) * blockDim.x)
      put<false>(dst + j * ld + i, src[i]);
  }
}

/// Rows [0, rows) of column-major parts side by side, converted into the column-major dst
/// (leading dimension ld), `stack_parts` parts per launch.
template <class To, class From>
void stack_columns(execution& exec, std::span<const column_source<From>> parts, index_t rows, To* dst, index_t ld,
                   const char* where) {
  if (rows == 0) return;
  std::size_t next = 0;
  for (index_t at = 0; next < parts.size();) {
    const stacked_sources<From> batch = next_batch(parts, next);
    const index_t cols = batch.first_col[batch.count];
    if (cols == 0) continue;
    stacked_columns_kernel<<<grid_2d(rows, cols), block_threads, 0, exec.stream()>>>(batch, rows, dst + at * ld, ld);
    check_launch(where, "ogpsa's column stacking kernel");
    at += cols;
  }
}

template <class T>
__device__ inline bool finite_value(T value) {
  if constexpr (std::is_same_v<T, double>) return isfinite(value);
  else return isfinite(element_cast<float>(value));
}

/// Sets *flag when any element is NaN or Inf. The view is `outer` runs of `inner` contiguous
/// elements, `outer_stride` apart.
template <class T>
__global__ void non_finite_kernel(const T* src, index_t inner, index_t outer, index_t outer_stride, int* flag) {
  bool bad = false;
  for (index_t j = blockIdx.y; j < outer; j += gridDim.y)
    for (index_t i = blockIdx.x * index_t(blockDim.x) + threadIdx.x; i < inner; i += index_t(gridDim.x) * blockDim.x)
      bad = bad || !finite_value(src[j * outer_stride + i]);
  if (bad) *flag = 1;  // every writer stores the same value
}

/// No NaN or Inf in src (waits for the stream).
template <class T>
bool all_finite(execution& exec, const device_ref<const T>& src, const char* where) {
  if (src.size() == 0) return true;
  auto* flag = static_cast<int*>(exec.device_scratch());
  auto* seen = static_cast<int*>(exec.host_scratch());
  OGPSA_CUDA_CHECK(where, cudaMemsetAsync(flag, 0, sizeof(int), exec.stream()));
  const bool by_columns = src.column_major();
  const index_t inner = by_columns ? src.rows : src.cols, outer = by_columns ? src.cols : src.rows;
  const index_t stride = by_columns ? src.col_stride : src.row_stride;
  non_finite_kernel<<<grid_2d(inner, outer), block_threads, 0, exec.stream()>>>(src.data, inner, outer, stride, flag);
  check_launch(where, "ogpsa's finiteness kernel");
  OGPSA_CUDA_CHECK(where, cudaMemcpyAsync(seen, flag, sizeof(int), cudaMemcpyDeviceToHost, exec.stream()));
  exec.synchronize();
  return *seen == 0;
}

/// y -= c x with c read from device memory (a dot product cuBLAS left there).
template <class T>
__global__ void subtract_scaled_kernel(T* y, const T* x, const T* c, index_t n) {
  const T scale = *c;
  for (index_t i = blockIdx.x * index_t(blockDim.x) + threadIdx.x; i < n; i += index_t(gridDim.x) * blockDim.x)
    y[i] -= scale * x[i];
}

/// x /= s: a true division, as the host backend does, not a multiplication by 1/s.
template <class T>
__global__ void divide_kernel(T* x, index_t n, T s) {
  for (index_t i = blockIdx.x * index_t(blockDim.x) + threadIdx.x; i < n; i += index_t(gridDim.x) * blockDim.x)
    x[i] /= s;
}

}  // namespace ogpsa::cuda::detail
