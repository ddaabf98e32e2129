#pragma once
/// \file
/// Launch geometry shared by the backend's kernels and the host code that plans them.

#include <algorithm>

#include <cuda_runtime_api.h>

#include "ogpsa/config.hpp"

namespace ogpsa::cuda::detail {

/// Threads per block of every one-dimensional kernel (a multiple of the warp size).
inline constexpr int block_threads = 256;
inline constexpr int warp_threads = 32;

/// Blocks for a grid-stride loop over n items, at most `cap` (enough to fill any current GPU).
inline unsigned grid_blocks(index_t n, index_t cap = 8192) {
  const index_t blocks = (n + block_threads - 1) / block_threads;
  return static_cast<unsigned>(std::clamp<index_t>(blocks, 1, cap));
}

/// A 2-d grid for rows x cols work: x strides over rows, y over columns, at most ~64K blocks.
inline dim3 grid_2d(index_t rows, index_t cols) {
  const unsigned x = grid_blocks(rows, 4096);
  const index_t y = std::clamp<index_t>(cols, 1, std::max<index_t>(1, 65535 / x));
  return dim3(x, static_cast<unsigned>(y));
}

}  // namespace ogpsa::cuda::detail
