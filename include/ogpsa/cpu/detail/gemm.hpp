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

#include <algorithm>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

namespace ogpsa::cpu::detail {

template <class M>
inline constexpr int storage_order_of =
    (std::remove_reference_t<M>::Flags & Eigen::RowMajorBit) ? Eigen::RowMajor : Eigen::ColMajor;

/// Vectors aligned as Eigen aligns its allocations (for its packet loads).
template <class A>
using aligned_vector = std::vector<A, Eigen::aligned_allocator<A>>;

/// The cache blocking Eigen's product chooses on one thread for dst (rows x cols, in `order`) +=
/// lhs (rows x depth) rhs, and the packing space it takes. It sets the order of every sum (the
/// depth is summed in runs of kc), so results depend on the shapes it was chosen for only.
template <class T>
struct gemm_blocking {
  Eigen::Index kc = 0, mc = 0, nc = 0;

  gemm_blocking() = default;
  /// No packing at all for an empty product (which `gemm_serial` does not run).
  gemm_blocking(Eigen::Index rows, Eigen::Index cols, Eigen::Index depth, int order) {
    if (rows == 0 || cols == 0 || depth == 0) return;
    // As Eigen's gemm_blocking_space: a row-major product runs as the column-major one of its transpose.
    kc = depth;
    mc = order == Eigen::RowMajor ? cols : rows;
    nc = order == Eigen::RowMajor ? rows : cols;
    Eigen::internal::computeProductBlockingSizes<T, T, 1>(kc, mc, nc, Eigen::Index{1});
  }

  /// Values of the packed left operand, rounded up to whole cache lines (the right one follows).
  Eigen::Index left_space() const {
    constexpr Eigen::Index line = std::max<Eigen::Index>(1, 64 / static_cast<Eigen::Index>(sizeof(T)));
    return (kc * mc + line - 1) / line * line;
  }
  /// Values of packing space a product with this blocking takes.
  Eigen::Index space() const { return left_space() + kc * nc; }
};

namespace gemm_internal {

/// Eigen's blocking for one thread, packing into memory of the caller's.
template <class T>
class blocking_in : public Eigen::internal::level3_blocking<T, T> {
 public:
  blocking_in(const gemm_blocking<T>& b, T* space) {
    this->m_kc = b.kc;
    this->m_mc = b.mc;
    this->m_nc = b.nc;
    this->m_blockA = space;
    this->m_blockB = space + b.left_space();
  }
};

template <class Lhs, class Rhs, class Dst, class T, class Blocking>
void run(const Lhs& lhs, const Rhs& rhs, Dst& dst, T alpha, Blocking& blocking) {
  Eigen::internal::general_matrix_matrix_product<Eigen::Index, T, storage_order_of<Lhs>, false, T,
                                                 storage_order_of<Rhs>, false, storage_order_of<Dst>, 1>::
      run(dst.rows(), dst.cols(), lhs.cols(), lhs.data(), lhs.outerStride(), rhs.data(),
          rhs.outerStride(), dst.data(), 1, dst.outerStride(), alpha, blocking);
}

}  // namespace gemm_internal

/// dst += alpha * lhs * rhs. Every operand is a matrix expression with direct access and unit
/// inner stride (a Map, a Block of one, or a Transpose of either), all of one scalar type. The
/// packing space is allocated here (on the stack when small, as Eigen does).
template <class Lhs, class Rhs, class Dst>
void gemm_serial(const Lhs& lhs, const Rhs& rhs, Dst&& dst,
                 typename std::remove_reference_t<Dst>::Scalar alpha) {
  using T = typename std::remove_reference_t<Dst>::Scalar;
  static_assert(std::is_same_v<typename Lhs::Scalar, T> && std::is_same_v<typename Rhs::Scalar, T>);
  constexpr int order = storage_order_of<Dst>;
  if (dst.rows() == 0 || dst.cols() == 0 || lhs.cols() == 0) return;
  Eigen::internal::gemm_blocking_space<order, T, T, Eigen::Dynamic, Eigen::Dynamic, Eigen::Dynamic>
      blocking(dst.rows(), dst.cols(), lhs.cols(), 1, true);
  gemm_internal::run(lhs, rhs, dst, alpha, blocking);
}

/// The same with `blocking`, packing into `space` (at least `blocking.space()` values, aligned as
/// `aligned_vector`'s): allocates nothing. `blocking` is for the destination's storage order, and
/// for any shapes (those of the largest of a series of products, so that one space serves them all)
/// but those of an empty product, unless this one is empty too.
template <class Lhs, class Rhs, class Dst>
void gemm_serial(const Lhs& lhs, const Rhs& rhs, Dst&& dst, typename std::remove_reference_t<Dst>::Scalar alpha,
                 const gemm_blocking<typename std::remove_reference_t<Dst>::Scalar>& blocking,
                 typename std::remove_reference_t<Dst>::Scalar* space) {
  using T = typename std::remove_reference_t<Dst>::Scalar;
  static_assert(std::is_same_v<typename Lhs::Scalar, T> && std::is_same_v<typename Rhs::Scalar, T>);
  if (dst.rows() == 0 || dst.cols() == 0 || lhs.cols() == 0) return;
  gemm_internal::blocking_in<T> in(blocking, space);
  gemm_internal::run(lhs, rhs, dst, alpha, in);
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
