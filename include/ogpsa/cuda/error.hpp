#pragma once
/// \file
/// CUDA runtime, cuBLAS and cuSOLVER status codes turned into ogpsa exceptions.
///
/// `OGPSA_CUDA_CHECK(where, call)` evaluates `call` and throws when it did not succeed:
/// `out_of_memory` for allocation failures, `backend_error` otherwise, with the message
/// `where(): <api> failed: <status name> (<status text>)`, e.g.
/// `ogpsa::cuda::device_matrix(): cudaMallocFromPoolAsync failed: cudaErrorMemoryAllocation (out of memory)`.
/// A failed runtime call also clears the runtime's last-error state, so that the next
/// `cudaGetLastError()` (ours after a kernel launch, or the caller's) does not report it again.

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include "ogpsa/error.hpp"

namespace ogpsa::cuda::detail {

/// "cublasSgemm_v2_64(handle, ...)" -> "cublasSgemm_v2_64": the API name of a stringified call.
inline std::string_view api_name(std::string_view call) {
  return call.substr(0, std::min(call.find('('), call.size()));
}

[[noreturn]] inline void throw_status(const char* where, std::string_view call, const char* name,
                                      const char* text, bool allocation) {
  std::string api(api_name(call));
  if (allocation) OGPSA_FAIL(out_of_memory, where, api << " failed: " << name << " (" << text << ")");
  OGPSA_FAIL(backend_error, where, api << " failed: " << name << " (" << text << ")");
}

inline void check(cudaError_t status, const char* where, std::string_view call) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();  // clear the last-error state: this failure is reported here, once
  throw_status(where, call, cudaGetErrorName(status), cudaGetErrorString(status),
               status == cudaErrorMemoryAllocation);
}

inline void check(cublasStatus_t status, const char* where, std::string_view call) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw_status(where, call, cublasGetStatusName(status), cublasGetStatusString(status),
               status == CUBLAS_STATUS_ALLOC_FAILED);
}

/// cuSOLVER has no status-to-text function of its own.
inline const char* status_text(cusolverStatus_t status) {
  switch (status) {
    case CUSOLVER_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUSOLVER_STATUS_ALLOC_FAILED: return "resource allocation failed";
    case CUSOLVER_STATUS_INVALID_VALUE: return "an unsupported value or parameter was passed";
    case CUSOLVER_STATUS_ARCH_MISMATCH: return "the device does not support the operation";
    case CUSOLVER_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUSOLVER_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUSOLVER_STATUS_NOT_SUPPORTED: return "the operation is not supported";
    default: return "unknown cuSOLVER status";
  }
}

inline const char* status_name(cusolverStatus_t status) {
  switch (status) {
    case CUSOLVER_STATUS_NOT_INITIALIZED: return "CUSOLVER_STATUS_NOT_INITIALIZED";
    case CUSOLVER_STATUS_ALLOC_FAILED: return "CUSOLVER_STATUS_ALLOC_FAILED";
    case CUSOLVER_STATUS_INVALID_VALUE: return "CUSOLVER_STATUS_INVALID_VALUE";
    case CUSOLVER_STATUS_ARCH_MISMATCH: return "CUSOLVER_STATUS_ARCH_MISMATCH";
    case CUSOLVER_STATUS_EXECUTION_FAILED: return "CUSOLVER_STATUS_EXECUTION_FAILED";
    case CUSOLVER_STATUS_INTERNAL_ERROR: return "CUSOLVER_STATUS_INTERNAL_ERROR";
    case CUSOLVER_STATUS_NOT_SUPPORTED: return "CUSOLVER_STATUS_NOT_SUPPORTED";
    default: return "CUSOLVER_STATUS_UNKNOWN";
  }
}

inline void check(cusolverStatus_t status, const char* where, std::string_view call) {
  if (status == CUSOLVER_STATUS_SUCCESS) return;
  throw_status(where, call, status_name(status), status_text(status),
               status == CUSOLVER_STATUS_ALLOC_FAILED);
}

/// Checks an allocation, naming its size: out of memory is the likely failure and the size the
/// user needs to know.
inline void check_allocation(cudaError_t status, const char* where, const char* api, std::size_t bytes) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();
  const double mib = static_cast<double>(bytes) / (1024.0 * 1024.0);
  if (status == cudaErrorMemoryAllocation)
    OGPSA_FAIL(out_of_memory, where, api << " could not allocate " << bytes << " bytes (" << mib
                                         << " MiB): " << cudaGetErrorName(status) << " ("
                                         << cudaGetErrorString(status) << ")");
  OGPSA_FAIL(backend_error, where, api << " failed allocating " << bytes << " bytes: "
                                       << cudaGetErrorName(status) << " ("
                                       << cudaGetErrorString(status) << ")");
}

/// Checks the launch of a kernel (bad configuration, no device, a sticky error from earlier work).
inline void check_launch(const char* where, const char* kernel) {
  const cudaError_t status = cudaGetLastError();
  if (status == cudaSuccess) return;
  OGPSA_FAIL(backend_error, where,
             "launching " << kernel << " failed: " << cudaGetErrorName(status) << " ("
                          << cudaGetErrorString(status) << ")");
}

}  // namespace ogpsa::cuda::detail

/// Throws an ogpsa exception naming `Where`, the API called and its status when `Call` fails.
#define OGPSA_CUDA_CHECK(Where, Call) ::ogpsa::cuda::detail::check((Call), (Where), #Call)
