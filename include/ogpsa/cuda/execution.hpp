#pragma once
/// \file
/// `ogpsa::cuda::execution`: the stream, library handles and math options the CUDA backend runs
/// with. A projector holds one; pass your framework's current stream to order ogpsa's work with
/// your own (`ogpsa::cuda::execution{at::cuda::getCurrentCUDAStream()}`).

#include <cstddef>
#include <memory>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include "ogpsa/cuda/detail/device_buffer.hpp"
#include "ogpsa/cuda/error.hpp"

namespace ogpsa::cuda {

/// How matrix-side projections of fp32 gradients use the tensor cores.
///
/// | value   | products                                    | U^T g after projection        |
/// |---------|---------------------------------------------|-------------------------------|
/// | `exact` | fp32 FMA (no tensor cores), the default     | ~1e-6 of |U^T g| before        |
/// | `tf32`  | TF32 tensor cores (10-bit mantissa inputs)  | ~1e-3 of |U^T g| before        |
///
/// bf16 and fp16 gradients always use the tensor cores: their products with the basis are
/// exact in fp32 (see `backend::project_all`), so there is nothing to trade.
enum class matrix_math { exact, tf32 };

namespace detail {

/// Handles bound to one stream, created on first use (so that constructing an execution never
/// touches the device), plus a small scratch area for scalar results.
class library_context {
 public:
  explicit library_context(cudaStream_t stream) : stream_(stream) {}
  library_context(const library_context&) = delete;
  library_context& operator=(const library_context&) = delete;
  ~library_context() {
    if (blas_ != nullptr) (void)cublasDestroy(blas_);
    if (solver_ != nullptr) (void)cusolverDnDestroy(solver_);
    if (solver_params_ != nullptr) (void)cusolverDnDestroyParams(solver_params_);
  }

  cublasHandle_t blas() {
    if (blas_ == nullptr) {
      constexpr const char* where = "ogpsa::cuda::execution::blas";
      cublasHandle_t h = nullptr;
      OGPSA_CUDA_CHECK(where, cublasCreate(&h));
      blas_ = h;
      OGPSA_CUDA_CHECK(where, cublasSetStream(blas_, stream_));
    }
    return blas_;
  }

  cusolverDnHandle_t solver() {
    if (solver_ == nullptr) {
      constexpr const char* where = "ogpsa::cuda::execution::solver";
      cusolverDnHandle_t h = nullptr;
      OGPSA_CUDA_CHECK(where, cusolverDnCreate(&h));
      solver_ = h;
      OGPSA_CUDA_CHECK(where, cusolverDnSetStream(solver_, stream_));
    }
    return solver_;
  }

  /// The options of cuSOLVER's 64-bit routines (their defaults).
  cusolverDnParams_t solver_params() {
    if (solver_params_ == nullptr) {
      cusolverDnParams_t p = nullptr;
      OGPSA_CUDA_CHECK("ogpsa::cuda::execution::solver_params", cusolverDnCreateParams(&p));
      solver_params_ = p;
    }
    return solver_params_;
  }

  /// `scratch_bytes` of device memory and as many of page-locked host memory, for the scalar
  /// results of reductions (one at a time, in stream order).
  static constexpr std::size_t scratch_bytes = 256;
  void* device_scratch() {
    if (device_scratch_.size() == 0)
      device_scratch_ = device_buffer(scratch_bytes, stream_, "ogpsa::cuda::execution");
    return device_scratch_.data();
  }
  void* host_scratch() {
    if (host_scratch_.size() == 0) host_scratch_ = pinned_buffer(scratch_bytes, "ogpsa::cuda::execution");
    return host_scratch_.data();
  }

 private:
  cudaStream_t stream_;
  cublasHandle_t blas_ = nullptr;
  cusolverDnHandle_t solver_ = nullptr;
  cusolverDnParams_t solver_params_ = nullptr;
  device_buffer device_scratch_;
  pinned_buffer host_scratch_;
};

}  // namespace detail

/// Where and how the CUDA backend runs: a stream (the default stream unless given), the cuBLAS
/// and cuSOLVER handles bound to it (created on first use, on the device current at that time),
/// and the matrix math mode. Copies share the handles once they exist; use one execution per
/// host thread at a time, as cuBLAS handles require. The stream must outlive every execution
/// and every device matrix made with it.
class execution {
 public:
  execution() = default;
  explicit execution(cudaStream_t stream, matrix_math math = matrix_math::exact)
      : stream_(stream), math_(math) {}

  cudaStream_t stream() const noexcept { return stream_; }
  matrix_math math() const noexcept { return math_; }

  cublasHandle_t blas() { return context().blas(); }
  cusolverDnHandle_t solver() { return context().solver(); }
  cusolverDnParams_t solver_params() { return context().solver_params(); }
  void* device_scratch() { return context().device_scratch(); }
  void* host_scratch() { return context().host_scratch(); }

  /// Blocks until the stream's work is done. \throws backend_error for a failure in that work.
  void synchronize() const {
    OGPSA_CUDA_CHECK("ogpsa::cuda::execution::synchronize", cudaStreamSynchronize(stream_));
  }

 private:
  detail::library_context& context() {
    if (!context_) context_ = std::make_shared<detail::library_context>(stream_);
    return *context_;
  }

  cudaStream_t stream_ = nullptr;
  matrix_math math_ = matrix_math::exact;
  std::shared_ptr<detail::library_context> context_;
};

}  // namespace ogpsa::cuda
