#pragma once
/// \file
/// `ogpsa::cuda::device_matrix<T>`: the CUDA backend's owning matrix, dense and column-major in
/// device memory. Subspaces (`subspace<Basis, cuda::backend>::basis`) are device matrices.

#include <cstddef>
#include <utility>

#include <cuda_runtime_api.h>

#include "ogpsa/config.hpp"
#include "ogpsa/cuda/detail/device_buffer.hpp"
#include "ogpsa/cuda/error.hpp"
#include "ogpsa/element.hpp"
#include "ogpsa/error.hpp"

namespace ogpsa::cuda {

/// A rows x cols column-major matrix of `T` in device memory (leading dimension = rows).
///
/// Memory is stream-ordered: allocated, copied and freed on the stream given at construction
/// (the execution's stream when the backend creates it), which must outlive the matrix. Copies
/// are deep; moves steal. Elements are uninitialized after construction
/// (`backend::zeros` gives zeros).
///
/// \tparam T  float, double, bfloat16 or float16
template <element T>
class device_matrix {
 public:
  using value_type = T;
  /// Eigen's name for the element type, so that estimator code written against the host
  /// backend's Eigen matrices (`typename Matrix::Scalar`) takes device matrices too.
  using Scalar = T;

  device_matrix() = default;

  /// \throws invalid_argument for negative extents, out_of_memory when the device is full.
  device_matrix(index_t rows, index_t cols, cudaStream_t stream)
      : buffer_(bytes_for(rows, cols), stream, "ogpsa::cuda::device_matrix"), rows_(rows), cols_(cols) {}

  device_matrix(const device_matrix& other) : device_matrix(other.rows_, other.cols_, other.stream()) {
    if (size() > 0)
      OGPSA_CUDA_CHECK("ogpsa::cuda::device_matrix",
                       cudaMemcpyAsync(data(), other.data(), bytes(), cudaMemcpyDeviceToDevice, stream()));
  }

  device_matrix(device_matrix&& other) noexcept
      : buffer_(std::move(other.buffer_)),
        rows_(std::exchange(other.rows_, 0)),
        cols_(std::exchange(other.cols_, 0)) {}

  device_matrix& operator=(const device_matrix& other) {
    if (this != &other) *this = device_matrix(other);
    return *this;
  }

  device_matrix& operator=(device_matrix&& other) noexcept {
    buffer_ = std::move(other.buffer_);
    rows_ = std::exchange(other.rows_, 0);
    cols_ = std::exchange(other.cols_, 0);
    return *this;
  }

  ~device_matrix() = default;

  index_t rows() const noexcept { return rows_; }
  index_t cols() const noexcept { return cols_; }
  index_t size() const noexcept { return rows_ * cols_; }
  std::size_t bytes() const noexcept { return static_cast<std::size_t>(size()) * sizeof(T); }

  T* data() noexcept { return static_cast<T*>(buffer_.data()); }
  const T* data() const noexcept { return static_cast<const T*>(buffer_.data()); }
  /// Column j's first element.
  T* col(index_t j) noexcept { return data() + j * rows_; }
  const T* col(index_t j) const noexcept { return data() + j * rows_; }

  /// The stream this matrix's memory is ordered on.
  cudaStream_t stream() const noexcept { return buffer_.stream(); }

 private:
  static std::size_t bytes_for(index_t rows, index_t cols) {
    OGPSA_REQUIRE(rows >= 0 && cols >= 0, invalid_argument, "ogpsa::cuda::device_matrix",
                  "extents must be >= 0, got " << rows << " x " << cols);
    return static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) * sizeof(T);
  }

  detail::device_buffer buffer_;
  index_t rows_ = 0;
  index_t cols_ = 0;
};

}  // namespace ogpsa::cuda
