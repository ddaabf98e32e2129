#pragma once
/// \file
/// Householder QR with 64-bit sizes. cuSOLVER's 64-bit API factors (`geqrf`) and forms the
/// triangular factor of a block reflector (`larft`) but neither applies Q (`ormqr`) nor forms it
/// (`orgqr`), whose 32-bit forms stop at 2^31 - 1 rows. Both are done here from the compact WY
/// form of geqrf's k reflectors, Q = H_1 ... H_k = I - V T V^T (V unit lower trapezoidal in the
/// factored matrix, T k x k upper triangular from larft), with cuBLAS's 64-bit GEMMs. V's top
/// k x k triangle (which geqrf shares with R) is copied out with its unit diagonal; the rest of V
/// is read where it lies.

#include <cuda_runtime.h>

#include "ogpsa/config.hpp"
#include "ogpsa/cuda/detail/blas.hpp"
#include "ogpsa/cuda/detail/device_buffer.hpp"
#include "ogpsa/cuda/detail/launch.hpp"
#include "ogpsa/cuda/error.hpp"
#include "ogpsa/cuda/execution.hpp"

namespace ogpsa::cuda::detail {

/// out (k x k, leading dimension k) = the unit lower triangle of a's top k x k block.
template <class T>
__global__ void unit_lower_kernel(const T* a, index_t lda, index_t k, T* out) {
  for (index_t e = blockIdx.x * index_t{blockDim.x} + threadIdx.x; e < k * k; e += index_t{gridDim.x} * blockDim.x) {
    const index_t i = e % k, j = e / k;
    out[e] = i > j ? a[j * lda + i] : (i == j ? T(1) : T(0));
  }
}

/// a (n x n, leading dimension n) += I.
template <class T>
__global__ void add_identity_kernel(T* a, index_t n) {
  for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < n; i += index_t{gridDim.x} * blockDim.x)
    a[i * n + i] += T(1);
}

/// The compact WY form of the k reflectors geqrf left in the m x k `a` (m >= k): V's top
/// triangle and T, both k x k in device memory.
template <blas_real T>
struct block_reflector {
  device_buffer storage;
  T* top;  // V's top k x k block, unit lower triangular
  T* t;    // T, upper triangular

  block_reflector(execution& exec, index_t m, index_t k, const T* a, index_t lda, const T* tau, const char* where)
      : storage(2 * static_cast<std::size_t>(k * k) * sizeof(T), exec.stream(), where),
        top(static_cast<T*>(storage.data())),
        t(top + k * k) {
    OGPSA_CUDA_CHECK(where, cudaMemsetAsync(t, 0, static_cast<std::size_t>(k * k) * sizeof(T), exec.stream()));
    larft<T>(exec, m, k, a, lda, tau, t, k, where);
    unit_lower_kernel<<<grid_blocks(k * k), block_threads, 0, exec.stream()>>>(a, lda, k, top);
    check_launch(where, "ogpsa's reflector triangle kernel");
  }
};

/// c <- op(Q) c for the m x n `c` (leading dimension ldc), Q = H_1 ... H_k from the k reflectors
/// in the m x k `a` (LAPACK's ormqr from the left): c - V op(T) (V^T c), in two GEMMs over V's
/// rows below its top triangle and two small ones for the triangle.
template <blas_real T>
void apply_reflectors(execution& exec, cublasOperation_t trans, index_t m, index_t n, index_t k, const T* a,
                      index_t lda, const T* tau, T* c, index_t ldc, const char* where) {
  if (m == 0 || n == 0 || k == 0) return;
  const block_reflector<T> wy(exec, m, k, a, lda, tau, where);
  device_buffer scratch(2 * static_cast<std::size_t>(k * n) * sizeof(T), exec.stream(), where);
  T* w = static_cast<T*>(scratch.data());  // V^T c, k x n
  T* tw = w + k * n;                       // op(T) V^T c
  const index_t below = m - k;
  gemm<T>(exec, CUBLAS_OP_T, CUBLAS_OP_N, k, n, k, T(1), wy.top, k, c, ldc, T(0), w, k, where);
  if (below > 0) gemm<T>(exec, CUBLAS_OP_T, CUBLAS_OP_N, k, n, below, T(1), a + k, lda, c + k, ldc, T(1), w, k, where);
  trmm<T>(exec, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_UPPER, trans, k, n, T(1), wy.t, k, w, k, tw, k, where);
  gemm<T>(exec, CUBLAS_OP_N, CUBLAS_OP_N, k, n, k, T(-1), wy.top, k, tw, k, T(1), c, ldc, where);
  if (below > 0) gemm<T>(exec, CUBLAS_OP_N, CUBLAS_OP_N, below, n, k, T(-1), a + k, lda, tw, k, T(1), c + k, ldc, where);
}

/// a <- the first n columns of Q, in place over the n reflectors geqrf left in the m x n `a`
/// (m >= n; LAPACK's orgqr). Q [I; 0] = [I - V_top S; -V_below S] with S = T V_top^T, which is
/// upper triangular, so the rows below the top are multiplied in place (a triangular product)
/// and only n x n scratch is needed.
template <blas_real T>
void form_q(execution& exec, index_t m, index_t n, T* a, index_t lda, const T* tau, const char* where) {
  if (n == 0) return;
  const block_reflector<T> wy(exec, m, n, a, lda, tau, where);
  device_buffer scratch(2 * static_cast<std::size_t>(n * n) * sizeof(T), exec.stream(), where);
  T* s = static_cast<T*>(scratch.data());
  T* top = s + n * n;
  gemm<T>(exec, CUBLAS_OP_N, CUBLAS_OP_T, n, n, n, T(1), wy.t, n, wy.top, n, T(0), s, n, where);
  if (m > n) trmm<T>(exec, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N, m - n, n, T(-1), s, n, a + n, lda, a + n, lda, where);
  gemm<T>(exec, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, T(-1), wy.top, n, s, n, T(0), top, n, where);
  add_identity_kernel<<<grid_blocks(n), block_threads, 0, exec.stream()>>>(top, n);
  check_launch(where, "ogpsa's identity kernel");
  OGPSA_CUDA_CHECK(where, cudaMemcpy2DAsync(a, static_cast<std::size_t>(lda) * sizeof(T), top,
                                            static_cast<std::size_t>(n) * sizeof(T), static_cast<std::size_t>(n) * sizeof(T),
                                            static_cast<std::size_t>(n), cudaMemcpyDeviceToDevice, exec.stream()));
}

}  // namespace ogpsa::cuda::detail
