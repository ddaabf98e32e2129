#include <type_traits>

#include <doctest/doctest.h>

#include <ogpsa/cuda/error.hpp>

#include "support.hpp"

namespace t = ogpsa::test;

TEST_CASE("runtime failures name the function, the API and the status") {
  t::check_throws_with<ogpsa::backend_error>(
      [] { OGPSA_CUDA_CHECK("ogpsa::cuda::backend::gram", cudaErrorInvalidValue); },
      {"ogpsa::cuda::backend::gram(): ", "cudaErrorInvalidValue failed", "cudaErrorInvalidValue ("});
}

TEST_CASE("out of memory is its own exception, a backend_error") {
  t::check_throws_with<ogpsa::out_of_memory>(
      [] { OGPSA_CUDA_CHECK("ogpsa::cuda::device_matrix", cudaErrorMemoryAllocation); }, {"device_matrix(): ", "out of memory"});
  t::check_throws_with<ogpsa::out_of_memory>(
      [] { ogpsa::cuda::detail::check_allocation(cudaErrorMemoryAllocation, "w", "cudaMallocAsync", 3u << 30); },
      {"w(): cudaMallocAsync could not allocate 3221225472 bytes (3072 MiB)", "cudaErrorMemoryAllocation"});
  CHECK(std::is_base_of_v<ogpsa::backend_error, ogpsa::out_of_memory>);
}

TEST_CASE("cuBLAS and cuSOLVER statuses are translated with their names and texts") {
  t::check_throws_with<ogpsa::backend_error>(
      [] { OGPSA_CUDA_CHECK("g", cublasStatus_t{CUBLAS_STATUS_NOT_SUPPORTED}); },
      {"g(): ", "CUBLAS_STATUS_NOT_SUPPORTED"});
  t::check_throws_with<ogpsa::out_of_memory>([] { OGPSA_CUDA_CHECK("g", CUBLAS_STATUS_ALLOC_FAILED); },
                                             {"CUBLAS_STATUS_ALLOC_FAILED"});
  t::check_throws_with<ogpsa::backend_error>([] { OGPSA_CUDA_CHECK("s", CUSOLVER_STATUS_INVALID_VALUE); },
                                             {"s(): CUSOLVER_STATUS_INVALID_VALUE failed", "unsupported value"});
  t::check_throws_with<ogpsa::out_of_memory>([] { OGPSA_CUDA_CHECK("s", CUSOLVER_STATUS_ALLOC_FAILED); },
                                             {"resource allocation failed"});
  CHECK_NOTHROW(OGPSA_CUDA_CHECK("s", CUSOLVER_STATUS_SUCCESS));
  CHECK_NOTHROW(OGPSA_CUDA_CHECK("s", CUBLAS_STATUS_SUCCESS));
  CHECK_NOTHROW(OGPSA_CUDA_CHECK("s", cudaSuccess));
}

TEST_CASE("the API name is the stringified call up to its argument list") {
  CHECK(ogpsa::cuda::detail::api_name("cublasSgemm_v2_64(h, a, b)") == "cublasSgemm_v2_64");
  CHECK(ogpsa::cuda::detail::api_name("cudaErrorInvalidValue") == "cudaErrorInvalidValue");
}
