#pragma once
/// \file
/// Column-major device matrices side by side, gathered into one panel a batch of parts per launch
/// (`stack_columns` in `elementwise.cuh`). The estimators keep their snapshots as one part per
/// feed, so one conversion launch per part per panel made the launch count grow with the number
/// of feeds times the number of panels. Host code, tested without a device.

#include <cstddef>
#include <span>

#include "ogpsa/config.hpp"

namespace ogpsa::cuda::detail {

/// Parts per launch: their descriptors travel in the kernel's argument (about 1.5 KiB).
inline constexpr int stack_parts = 64;

/// One column-major part: its first gathered element, its columns and their stride.
template <class T>
struct column_source {
  const T* data;
  index_t cols;
  index_t col_stride;
};

/// The parts of one launch and, for each, the panel columns before it in the launch
/// (`first_col[count]` is the launch's column count).
template <class T>
struct stacked_sources {
  const T* data[stack_parts];
  index_t col_stride[stack_parts];
  index_t first_col[stack_parts + 1];
  int count;
};

/// The next launch's parts, from parts[next] on: at most `stack_parts` non-empty ones (empty parts
/// are passed over); `next` moves past what was taken.
template <class T>
stacked_sources<T> next_batch(std::span<const column_source<T>> parts, std::size_t& next) {
  stacked_sources<T> batch{};
  index_t cols = 0;
  while (next < parts.size() && batch.count < stack_parts) {
    const column_source<T>& p = parts[next++];
    if (p.cols == 0) continue;
    batch.data[batch.count] = p.data;
    batch.col_stride[batch.count] = p.col_stride;
    batch.first_col[batch.count] = cols;
    cols += p.cols;
    ++batch.count;
  }
  batch.first_col[batch.count] = cols;
  return batch;
}

}  // namespace ogpsa::cuda::detail
