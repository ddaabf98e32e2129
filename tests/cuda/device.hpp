#pragma once
// Helpers shared by the CUDA tests: host <-> device copies of Eigen matrices, device views, and
// host matrices rounded to the 16-bit types. Host code only, so .cpp and .cu tests share it.

#include <Eigen/Core>
#include <cuda_runtime_api.h>

#include <ogpsa/bfloat16.hpp>
#include <ogpsa/cuda/detail/element_cast.hpp>
#include <ogpsa/cuda/execution.hpp>
#include <ogpsa/cuda/matrix.hpp>
#include <ogpsa/float16.hpp>
#include <ogpsa/memory_space.hpp>
#include <ogpsa/tensor_view.hpp>

#include "support.hpp"

namespace ogpsa::test::cuda {

using ogpsa::cuda::device_matrix;
using ogpsa::cuda::execution;

template <class T>
device_matrix<T> upload(execution& exec, const matrix<T>& h) {
  device_matrix<T> d(h.rows(), h.cols(), exec.stream());
  if (d.size() > 0) REQUIRE(cudaMemcpyAsync(d.data(), h.data(), d.bytes(), cudaMemcpyHostToDevice, exec.stream()) == cudaSuccess);
  exec.synchronize();
  return d;
}

template <class T>
matrix<T> download(execution& exec, const device_matrix<T>& d) {
  matrix<T> h(d.rows(), d.cols());
  if (d.size() > 0) REQUIRE(cudaMemcpyAsync(h.data(), d.data(), d.bytes(), cudaMemcpyDeviceToHost, exec.stream()) == cudaSuccess);
  exec.synchronize();
  return h;
}

/// A writable rank-2 device view of a whole device matrix, in its column-major order.
template <class T>
auto column_major_view(device_matrix<T>& d) {
  return ogpsa::matrix_view<T, cuda_memory_tag>(d.data(), {d.rows(), d.cols()}, {1, d.rows()});
}

/// `h` rounded to element type H (float16 or bfloat16), and back to double for references.
template <class H, class T>
matrix<H> rounded(const matrix<T>& h) {
  matrix<H> out(h.rows(), h.cols());
  for (Eigen::Index i = 0; i < h.size(); ++i) out(i) = H(static_cast<float>(h(i)));
  return out;
}

template <class T>
matrix<double> widened(const matrix<T>& h) {
  matrix<double> out(h.rows(), h.cols());
  for (Eigen::Index i = 0; i < h.size(); ++i) out(i) = ogpsa::cuda::detail::element_cast<double>(h(i));
  return out;
}

}  // namespace ogpsa::test::cuda
