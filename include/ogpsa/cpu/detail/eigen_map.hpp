#pragma once
/// \file
/// Eigen maps of the backend's strided matrices.

#include <type_traits>

#include <Eigen/Core>

#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/memory_space.hpp"

namespace ogpsa::cpu::detail {

template <class T>
using dense = Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, Eigen::Dynamic>;
template <class T>
using dense_row_major =
    Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class Plain, class T>
using map_of = Eigen::Map<std::conditional_t<std::is_const_v<T>, const Plain, Plain>, 0,
                          Eigen::OuterStride<>>;

/// Calls `f` with an Eigen map of `r`, column- or row-major as its strides say.
template <class T, class F>
decltype(auto) with_map(const ogpsa::detail::matrix_ref<T, host_memory_tag>& r, F&& f) {
  if (r.column_major()) {
    map_of<dense<T>, T> m(r.data, r.rows, r.cols, Eigen::OuterStride<>(r.col_stride));
    return f(m);
  }
  map_of<dense_row_major<T>, T> m(r.data, r.rows, r.cols, Eigen::OuterStride<>(r.row_stride));
  return f(m);
}

}  // namespace ogpsa::cpu::detail
