#pragma once
/// \file
/// Eigen's blocked matrix-product kernel, called on the calling thread.
///
/// Eigen's product API would split a large product across its own OpenMP threads (as many as
/// `Eigen::nbThreads()`, OpenMP's default, whenever it is not called from a team of several): that
/// ignores `execution::threads`, oversubscribes the cores when ogpsa already runs one product per
/// thread, and changes Eigen's cache blocking (hence the rounding) with the thread count. ogpsa
/// splits the work itself and calls the same kernel that API reaches, with single-thread blocking.
/// Only Eigen's general matrix-matrix products split (in Eigen 3.4; its decompositions, triangular
/// and self-adjoint products and matrix-vector products run on the calling thread).

#include <type_traits>

#include <Eigen/Core>

namespace ogpsa::cpu::detail {

template <class M>
inline constexpr int storage_order_of =
    (std::remove_reference_t<M>::Flags & Eigen::RowMajorBit) ? Eigen::RowMajor : Eigen::ColMajor;

/// dst += alpha * lhs * rhs. Every operand is a matrix expression with direct access and unit
/// inner stride (a Map, a Block of one, or a Transpose of either), all of one scalar type.
template <class Lhs, class Rhs, class Dst>
void gemm_serial(const Lhs& lhs, const Rhs& rhs, Dst&& dst,
                 typename std::remove_reference_t<Dst>::Scalar alpha) {
  using T = typename std::remove_reference_t<Dst>::Scalar;
  static_assert(std::is_same_v<typename Lhs::Scalar, T> && std::is_same_v<typename Rhs::Scalar, T>);
  constexpr int order = storage_order_of<Dst>;
  if (dst.rows() == 0 || dst.cols() == 0 || lhs.cols() == 0) return;
  Eigen::internal::gemm_blocking_space<order, T, T, Eigen::Dynamic, Eigen::Dynamic, Eigen::Dynamic>
      blocking(dst.rows(), dst.cols(), lhs.cols(), 1, true);
  Eigen::internal::general_matrix_matrix_product<Eigen::Index, T, storage_order_of<Lhs>, false, T,
                                                 storage_order_of<Rhs>, false, order, 1>::
      run(dst.rows(), dst.cols(), lhs.cols(), lhs.data(), lhs.outerStride(), rhs.data(),
          rhs.outerStride(), dst.data(), 1, dst.outerStride(), alpha, blocking);
}

/// lhs * rhs as a new column-major matrix, on the calling thread: for the estimators' host
/// arithmetic on small matrices, which Eigen's product API would split across threads too.
template <class Lhs, class Rhs>
Eigen::Matrix<typename Lhs::Scalar, Eigen::Dynamic, Eigen::Dynamic> serial_product(const Lhs& lhs,
                                                                                   const Rhs& rhs) {
  using T = typename Lhs::Scalar;
  Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> out =
      Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>::Zero(lhs.rows(), rhs.cols());
  gemm_serial(lhs, rhs, out, T(1));
  return out;
}

}  // namespace ogpsa::cpu::detail
