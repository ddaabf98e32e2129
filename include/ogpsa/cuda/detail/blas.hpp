#pragma once
/// \file
/// Typed wrappers over the cuBLAS and cuSOLVER calls the backend makes, so that the backend's
/// code reads the same for float and double. Every wrapper runs on the execution's stream and
/// sets the pointer mode it needs (the handle is shared).

#include <climits>
#include <cstddef>
#include <type_traits>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include "ogpsa/bfloat16.hpp"
#include "ogpsa/config.hpp"
#include "ogpsa/cuda/detail/device_buffer.hpp"
#include "ogpsa/cuda/error.hpp"
#include "ogpsa/cuda/execution.hpp"
#include "ogpsa/float16.hpp"

namespace ogpsa::cuda::detail {

/// cuBLAS's name for an element type.
template <class T>
constexpr cudaDataType_t data_type() {
  if constexpr (std::is_same_v<T, float>) return CUDA_R_32F;
  else if constexpr (std::is_same_v<T, double>) return CUDA_R_64F;
  else if constexpr (std::is_same_v<T, bfloat16>) return CUDA_R_16BF;
  else {
    static_assert(std::is_same_v<T, float16>, "no cuBLAS data type for this element type");
    return CUDA_R_16F;
  }
}

/// The cuSOLVER routines that only take 32-bit sizes.
inline int to_int(index_t value, const char* where, const char* what) {
  OGPSA_REQUIRE(value <= INT_MAX, invalid_argument, where,
                what << " " << value << " exceeds cuSOLVER's 32-bit limit " << INT_MAX);
  return static_cast<int>(value);
}

/// The element types cuBLAS and cuSOLVER compute in for the estimators: float and double.
template <class T>
concept blas_real = std::is_same_v<T, float> || std::is_same_v<T, double>;

/// C = alpha op(A) op(B) + beta C, in T (no reduced-precision shortcuts).
template <blas_real T>
void gemm(execution& exec, cublasOperation_t ta, cublasOperation_t tb, index_t m, index_t n, index_t k,
          T alpha, const T* a, index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc,
          const char* where) {
  cublasHandle_t h = exec.blas();
  OGPSA_CUDA_CHECK(where, cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
  if constexpr (std::is_same_v<T, float>)
    OGPSA_CUDA_CHECK(where, cublasSgemm_64(h, ta, tb, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc));
  else
    OGPSA_CUDA_CHECK(where, cublasDgemm_64(h, ta, tb, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc));
}

/// The lower triangle of C = alpha op(A) op(A)^T + beta C (op(A) is n x k).
template <blas_real T>
void syrk(execution& exec, cublasOperation_t trans, index_t n, index_t k, T alpha, const T* a,
          index_t lda, T beta, T* c, index_t ldc, const char* where) {
  cublasHandle_t h = exec.blas();
  OGPSA_CUDA_CHECK(where, cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
  if constexpr (std::is_same_v<T, float>)
    OGPSA_CUDA_CHECK(where, cublasSsyrk_64(h, CUBLAS_FILL_MODE_LOWER, trans, n, k, &alpha, a, lda, &beta, c, ldc));
  else
    OGPSA_CUDA_CHECK(where, cublasDsyrk_64(h, CUBLAS_FILL_MODE_LOWER, trans, n, k, &alpha, a, lda, &beta, c, ldc));
}

/// x^T y, accumulated in T, written to device memory (no host synchronization).
template <blas_real T>
void dot(execution& exec, index_t n, const T* x, const T* y, T* device_result, const char* where) {
  cublasHandle_t h = exec.blas();
  OGPSA_CUDA_CHECK(where, cublasSetPointerMode(h, CUBLAS_POINTER_MODE_DEVICE));
  if constexpr (std::is_same_v<T, float>)
    OGPSA_CUDA_CHECK(where, cublasSdot_64(h, n, x, 1, y, 1, device_result));
  else
    OGPSA_CUDA_CHECK(where, cublasDdot_64(h, n, x, 1, y, 1, device_result));
}

/// |x|, returned to the host (waits for the stream).
template <blas_real T>
T nrm2(execution& exec, index_t n, const T* x, const char* where) {
  cublasHandle_t h = exec.blas();
  OGPSA_CUDA_CHECK(where, cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
  T result{};
  if constexpr (std::is_same_v<T, float>)
    OGPSA_CUDA_CHECK(where, cublasSnrm2_64(h, n, x, 1, &result));
  else
    OGPSA_CUDA_CHECK(where, cublasDnrm2_64(h, n, x, 1, &result));
  return result;
}

/// The compute type of products of E operands: fp32 accumulation (TF32 tensor cores for fp32
/// operands only when the execution allows them), fp64 for double.
template <class E>
cublasComputeType_t compute_type(matrix_math math) {
  if constexpr (std::is_same_v<E, double>) return CUBLAS_COMPUTE_64F;
  else if constexpr (std::is_same_v<E, float>)
    return math == matrix_math::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  else return CUBLAS_COMPUTE_32F;
}

/// C_i = alpha op(A_i) op(B_i) + beta C_i for `count` members whose pointers are in device
/// arrays; alpha and beta point to scalars of the compute type, on the host or (with
/// `CUBLAS_POINTER_MODE_DEVICE`) in device memory, read when the GEMM runs. Reductions (split-K) run in
/// the compute type even where C is 16-bit: cuBLAS may otherwise add partial products in C's type,
/// which would round the projected gradient more than once.
struct batched_operand {
  const void* const* pointers;
  cudaDataType_t type;
  index_t ld;
};

inline void gemm_batched(execution& exec, cublasOperation_t ta, cublasOperation_t tb, index_t m, index_t n,
                         index_t k, const void* alpha, batched_operand a, batched_operand b, const void* beta,
                         void* const* c, cudaDataType_t c_type, index_t ldc, index_t count,
                         cublasComputeType_t compute, const char* where,
                         cublasPointerMode_t scalars = CUBLAS_POINTER_MODE_HOST) {
  if (count == 0) return;
  cublasHandle_t h = exec.blas();
  OGPSA_CUDA_CHECK(where, cublasSetPointerMode(h, scalars));
  OGPSA_CUDA_CHECK(where, cublasSetMathMode(h, static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH |
                                                                         CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
  OGPSA_CUDA_CHECK(where, cublasGemmBatchedEx_64(h, ta, tb, m, n, k, alpha, a.pointers, a.type, a.ld, b.pointers,
                                                 b.type, b.ld, beta, c, c_type, ldc, count, compute,
                                                 CUBLAS_GEMM_DEFAULT));
}

/// Householder QR in place (LAPACK's geqrf): R in the upper triangle, reflectors below, tau.
template <blas_real T>
void geqrf(execution& exec, int m, int n, T* a, int lda, T* tau, int* device_info, const char* where) {
  cusolverDnHandle_t h = exec.solver();
  int lwork = 0;
  if constexpr (std::is_same_v<T, float>)
    OGPSA_CUDA_CHECK(where, cusolverDnSgeqrf_bufferSize(h, m, n, a, lda, &lwork));
  else
    OGPSA_CUDA_CHECK(where, cusolverDnDgeqrf_bufferSize(h, m, n, a, lda, &lwork));
  device_buffer work(static_cast<std::size_t>(lwork) * sizeof(T), exec.stream(), where);
  T* w = static_cast<T*>(work.data());
  if constexpr (std::is_same_v<T, float>)
    OGPSA_CUDA_CHECK(where, cusolverDnSgeqrf(h, m, n, a, lda, tau, w, lwork, device_info));
  else
    OGPSA_CUDA_CHECK(where, cusolverDnDgeqrf(h, m, n, a, lda, tau, w, lwork, device_info));
}

/// Forms the first n columns of Q from geqrf's reflectors, in place (LAPACK's orgqr).
template <blas_real T>
void orgqr(execution& exec, int m, int n, int k, T* a, int lda, const T* tau, int* device_info,
           const char* where) {
  cusolverDnHandle_t h = exec.solver();
  int lwork = 0;
  if constexpr (std::is_same_v<T, float>)
    OGPSA_CUDA_CHECK(where, cusolverDnSorgqr_bufferSize(h, m, n, k, a, lda, tau, &lwork));
  else
    OGPSA_CUDA_CHECK(where, cusolverDnDorgqr_bufferSize(h, m, n, k, a, lda, tau, &lwork));
  device_buffer work(static_cast<std::size_t>(lwork) * sizeof(T), exec.stream(), where);
  T* w = static_cast<T*>(work.data());
  if constexpr (std::is_same_v<T, float>)
    OGPSA_CUDA_CHECK(where, cusolverDnSorgqr(h, m, n, k, a, lda, tau, w, lwork, device_info));
  else
    OGPSA_CUDA_CHECK(where, cusolverDnDorgqr(h, m, n, k, a, lda, tau, w, lwork, device_info));
}

/// c <- op(Q) c for Q given by geqrf's k reflectors in a (LAPACK's ormqr).
template <blas_real T>
void ormqr(execution& exec, cublasSideMode_t side, cublasOperation_t trans, int m, int n, int k, const T* a, int lda,
           const T* tau, T* c, int ldc, int* device_info, const char* where) {
  cusolverDnHandle_t h = exec.solver();
  int lwork = 0;
  if constexpr (std::is_same_v<T, float>)
    OGPSA_CUDA_CHECK(where, cusolverDnSormqr_bufferSize(h, side, trans, m, n, k, a, lda, tau, c, ldc, &lwork));
  else
    OGPSA_CUDA_CHECK(where, cusolverDnDormqr_bufferSize(h, side, trans, m, n, k, a, lda, tau, c, ldc, &lwork));
  device_buffer work(static_cast<std::size_t>(lwork) * sizeof(T), exec.stream(), where);
  T* w = static_cast<T*>(work.data());
  if constexpr (std::is_same_v<T, float>)
    OGPSA_CUDA_CHECK(where, cusolverDnSormqr(h, side, trans, m, n, k, a, lda, tau, c, ldc, w, lwork, device_info));
  else
    OGPSA_CUDA_CHECK(where, cusolverDnDormqr(h, side, trans, m, n, k, a, lda, tau, c, ldc, w, lwork, device_info));
}

}  // namespace ogpsa::cuda::detail
