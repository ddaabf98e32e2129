#include <cstdint>
#include <utility>

#include <doctest/doctest.h>

#include <ogpsa/cuda/execution.hpp>
#include <ogpsa/cuda/matrix.hpp>

#include "cuda/device.hpp"
#include "support.hpp"

namespace t = ogpsa::test;
namespace tc = ogpsa::test::cuda;
using ogpsa::cuda::device_matrix;

TEST_CASE("device matrices copy deeply, move cheaply and keep their extents") {
  ogpsa::cuda::execution exec;
  const t::matrix<float> h = t::random_matrix<float>(37, 5, 1);
  device_matrix<float> a = tc::upload(exec, h);
  CHECK(a.rows() == 37);
  CHECK(a.cols() == 5);
  CHECK(a.bytes() == 37 * 5 * sizeof(float));
  device_matrix<float> copy = a;
  CHECK(copy.data() != a.data());
  CHECK(tc::download(exec, copy) == h);
  const float* storage = a.data();
  device_matrix<float> moved = std::move(a);
  CHECK(moved.data() == storage);
  CHECK(a.size() == 0);  // NOLINT(bugprone-use-after-move): a moved-from matrix is empty
  copy = moved;
  CHECK(tc::download(exec, copy) == h);
  device_matrix<float> empty(0, 3, exec.stream());
  CHECK(empty.data() == nullptr);
  CHECK(device_matrix<float>(empty).cols() == 3);
}

TEST_CASE("an impossible allocation is reported as out of memory, with its size") {
  ogpsa::cuda::execution exec;
  const ogpsa::index_t terabyte = ogpsa::index_t{1} << 37;  // doubles: more than any GPU holds
  t::check_throws_with<ogpsa::out_of_memory>([&] { device_matrix<double> m(terabyte, 1, exec.stream()); },
                                             {"ogpsa::cuda::device_matrix(): cudaMallocFromPoolAsync could not allocate"});
  CHECK(cudaGetLastError() == cudaSuccess);  // the failure was reported once, and cleared
  t::check_throws_with<ogpsa::invalid_argument>([&] { device_matrix<float> m(-1, 2, exec.stream()); },
                                                {"extents must be >= 0, got -1 x 2"});
}

TEST_CASE("an execution creates its handles on first use and shares them with later copies") {
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  {
    ogpsa::cuda::execution exec(stream, ogpsa::cuda::matrix_math::tf32);
    CHECK(exec.stream() == stream);
    CHECK(exec.math() == ogpsa::cuda::matrix_math::tf32);
    cublasHandle_t blas = exec.blas();
    ogpsa::cuda::execution copy = exec;
    CHECK(copy.blas() == blas);
    cudaStream_t bound = nullptr;
    REQUIRE(cublasGetStream(blas, &bound) == CUBLAS_STATUS_SUCCESS);
    CHECK(bound == stream);
    CHECK(exec.solver() != nullptr);
    exec.synchronize();
  }
  REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
}

// Scratch that estimators and projections allocate per call must not go back to the driver at
// every synchronization: ogpsa's pool keeps it until release_cached_memory() is called.
TEST_CASE("freed device memory stays reserved for ogpsa's next allocation until it is released") {
  ogpsa::cuda::execution exec;
  cudaMemPool_t pool = ogpsa::cuda::detail::library_pool("test");
  cudaMemPool_t default_pool = nullptr;
  int device = 0;
  REQUIRE(cudaGetDevice(&device) == cudaSuccess);
  REQUIRE(cudaDeviceGetDefaultMemPool(&default_pool, device) == cudaSuccess);
  CHECK(pool != default_pool);  // the process's default pool keeps its own settings
  const auto reserved = [&] {
    std::uint64_t bytes = 0;
    REQUIRE(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &bytes) == cudaSuccess);
    return bytes;
  };
  { device_matrix<float> scratch(1 << 24, 1, exec.stream()); }  // 64 MiB, freed in stream order
  exec.synchronize();
  CHECK(reserved() >= (std::uint64_t{1} << 26));
  ogpsa::cuda::release_cached_memory();
  CHECK(reserved() < (std::uint64_t{1} << 26));
}
