#pragma once
/// \file
/// Typed wrappers over the cuBLAS and cuSOLVER calls the backend makes, so that the backend's
/// code reads the same for float and double. Every wrapper runs on the execution's stream, takes
/// 64-bit sizes (cuBLAS's `_64` and cuSOLVER's `X` routines) and sets the pointer mode it needs
/// (the handle is shared).

#include <cstddef>
#include <type_traits>
#include <vector>

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

/// C = alpha op(A) B (A triangular, on the `side` of B; C may be B itself, in place).
template <blas_real T>
void trmm(execution& exec, cublasSideMode_t side, cublasFillMode_t fill, cublasOperation_t trans, index_t m,
          index_t n, T alpha, const T* a, index_t lda, const T* b, index_t ldb, T* c, index_t ldc, const char* where) {
  cublasHandle_t h = exec.blas();
  OGPSA_CUDA_CHECK(where, cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
  if constexpr (std::is_same_v<T, float>)
    OGPSA_CUDA_CHECK(where, cublasStrmm_64(h, side, fill, trans, CUBLAS_DIAG_NON_UNIT, m, n, &alpha, a, lda, b, ldb, c, ldc));
  else
    OGPSA_CUDA_CHECK(where, cublasDtrmm_64(h, side, fill, trans, CUBLAS_DIAG_NON_UNIT, m, n, &alpha, a, lda, b, ldb, c, ldc));
}

/// The workspaces a cuSOLVER 64-bit routine asked for. A host workspace (none of the routines
/// used here asks for one today) may be read while the routine runs, so the stream is waited for
/// before it is released.
class solver_workspace {
 public:
  solver_workspace(execution& exec, std::size_t device_bytes, std::size_t host_bytes, const char* where)
      : exec_(exec), device_(device_bytes, exec.stream(), where), host_(host_bytes) {}
  solver_workspace(const solver_workspace&) = delete;
  solver_workspace& operator=(const solver_workspace&) = delete;
  ~solver_workspace() {
    if (!host_.empty()) (void)cudaStreamSynchronize(exec_.stream());  // a destructor cannot report failures
  }
  void* device() const noexcept { return device_.data(); }
  std::size_t device_bytes() const noexcept { return device_.size(); }
  void* host() noexcept { return host_.empty() ? nullptr : host_.data(); }
  std::size_t host_bytes() const noexcept { return host_.size(); }

 private:
  execution& exec_;
  device_buffer device_;
  std::vector<std::byte> host_;
};

/// Householder QR in place (LAPACK's geqrf, through cuSOLVER's 64-bit API): R in the upper
/// triangle, reflectors below, tau; `device_info` receives the routine's status.
template <blas_real T>
void geqrf(execution& exec, index_t m, index_t n, T* a, index_t lda, T* tau, int* device_info, const char* where) {
  cusolverDnHandle_t h = exec.solver();
  cusolverDnParams_t params = exec.solver_params();
  constexpr cudaDataType_t type = data_type<T>();
  std::size_t device_bytes = 0, host_bytes = 0;
  OGPSA_CUDA_CHECK(where, cusolverDnXgeqrf_bufferSize(h, params, m, n, type, a, lda, type, tau, type, &device_bytes,
                                                      &host_bytes));
  solver_workspace work(exec, device_bytes, host_bytes, where);
  OGPSA_CUDA_CHECK(where, cusolverDnXgeqrf(h, params, m, n, type, a, lda, type, tau, type, work.device(),
                                           work.device_bytes(), work.host(), work.host_bytes(), device_info));
}

/// The upper triangular k x k factor T of the block reflector H_1 ... H_k = I - V T V^T whose
/// reflectors geqrf left in the m x k `v` (unit lower trapezoidal, m >= k; LAPACK's larft,
/// through cuSOLVER's 64-bit API).
template <blas_real T>
void larft(execution& exec, index_t m, index_t k, const T* v, index_t ldv, const T* tau, T* t, index_t ldt,
           const char* where) {
  cusolverDnHandle_t h = exec.solver();
  cusolverDnParams_t params = exec.solver_params();
  constexpr cudaDataType_t type = data_type<T>();
  std::size_t device_bytes = 0, host_bytes = 0;
  OGPSA_CUDA_CHECK(where, cusolverDnXlarft_bufferSize(h, params, CUBLAS_DIRECT_FORWARD, CUBLAS_STOREV_COLUMNWISE, m, k,
                                                      type, v, ldv, type, tau, type, t, ldt, type, &device_bytes,
                                                      &host_bytes));
  solver_workspace work(exec, device_bytes, host_bytes, where);
  OGPSA_CUDA_CHECK(where, cusolverDnXlarft(h, params, CUBLAS_DIRECT_FORWARD, CUBLAS_STOREV_COLUMNWISE, m, k, type, v,
                                           ldv, type, tau, type, t, ldt, type, work.device(), work.device_bytes(),
                                           work.host(), work.host_bytes()));
}

}  // namespace ogpsa::cuda::detail
