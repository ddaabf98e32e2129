#pragma once
/// \file
/// Whole device matrices copied to and from host Eigen matrices on the execution's stream, waiting
/// for it (the backend's `to_host` and `from_host`, and its helpers' small host results).

#include <Eigen/Core>

#include <cuda_runtime_api.h>

#include "ogpsa/cuda/error.hpp"
#include "ogpsa/cuda/execution.hpp"
#include "ogpsa/cuda/matrix.hpp"

namespace ogpsa::cuda::detail {

template <class T>
Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> to_host(execution& exec, const device_matrix<T>& m) {
  Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> h(m.rows(), m.cols());
  if (m.size() > 0)
    OGPSA_CUDA_CHECK("ogpsa::cuda::backend::to_host",
                     cudaMemcpyAsync(h.data(), m.data(), m.bytes(), cudaMemcpyDeviceToHost, exec.stream()));
  exec.synchronize();
  return h;
}

template <class T>
device_matrix<T> from_host(execution& exec, const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>& h) {
  device_matrix<T> m(h.rows(), h.cols(), exec.stream());
  if (m.size() > 0)
    OGPSA_CUDA_CHECK("ogpsa::cuda::backend::from_host",
                     cudaMemcpyAsync(m.data(), h.data(), m.bytes(), cudaMemcpyHostToDevice, exec.stream()));
  exec.synchronize();  // h may go away as soon as this returns
  return m;
}

}  // namespace ogpsa::cuda::detail
