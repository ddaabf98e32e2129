#pragma once
/// \file
/// `ogpsa::view` adapters for Eigen dense objects with direct access (`Matrix`, `Array`, `Map`,
/// contiguous `Block`s). Vectors become rank-1 views, everything else rank-2 views with Eigen's
/// strides, so row-major and column-major storage are both seen correctly.

#include <type_traits>

#include <Eigen/Core>

#include "ogpsa/tensor_view.hpp"

namespace ogpsa {
namespace detail {

template <class Derived>
concept eigen_direct_access =
    std::is_base_of_v<Eigen::DenseBase<Derived>, Derived> &&
    (static_cast<unsigned>(Eigen::internal::traits<Derived>::Flags) & Eigen::DirectAccessBit) != 0;

template <class Element, class Derived>
auto eigen_view(Element* data, const Derived& m) {
  if constexpr (Derived::IsVectorAtCompileTime) {
    return vector_view<Element>(data, {static_cast<index_t>(m.size())},
                                {static_cast<index_t>(m.innerStride())});
  } else {
    const auto inner = static_cast<index_t>(m.innerStride());
    const auto outer = static_cast<index_t>(m.outerStride());
    if constexpr (Derived::IsRowMajor)
      return matrix_view<Element>(data, {m.rows(), m.cols()}, {outer, inner});
    else
      return matrix_view<Element>(data, {m.rows(), m.cols()}, {inner, outer});
  }
}

}  // namespace detail

/// A host view of an Eigen object's storage; writable when the object is.
template <class Derived>
  requires detail::eigen_direct_access<Derived>
auto view(Eigen::DenseBase<Derived>& m) {
  auto& d = m.derived();
  return detail::eigen_view(d.data(), d);
}

/// A read-only host view of an Eigen object's storage.
template <class Derived>
  requires detail::eigen_direct_access<Derived>
auto view(const Eigen::DenseBase<Derived>& m) {
  const auto& d = m.derived();
  return detail::eigen_view(d.data(), d);
}

/// Viewing a temporary matrix would dangle (a temporary `Map` is fine: it does not own its data).
template <class Derived>
void view(Eigen::PlainObjectBase<Derived>&&) = delete;

}  // namespace ogpsa
