#pragma once
/// \file
/// Tensor-view adapters for `at::Tensor`: ogpsa reads and writes LibTorch buffers in place.
///
/// | ogpsa element     | LibTorch dtype    |
/// |-------------------|-------------------|
/// | `float`           | `torch::kFloat`   |
/// | `double`          | `torch::kDouble`  |
/// | `ogpsa::bfloat16` | `torch::kBFloat16` (bit-compatible with `c10::BFloat16`) |
/// | `ogpsa::float16`  | `torch::kHalf`    (bit-compatible with `c10::Half`)      |
///
/// The memory space is a template argument, checked against the tensor's device at run time:
/// `host_memory_tag` views CPU tensors, `cuda_memory_tag` views CUDA tensors. This header includes
/// no CUDA header; projecting device views needs the CUDA backend from `<ogpsa/cuda.cuh>`.
///
/// Every adapter throws, naming itself, what is wrong and the value seen, for an undefined tensor,
/// a sparse one, a dtype other than the element's (`invalid_argument`), a device outside the memory
/// space (`invalid_argument`), a wrong number of dimensions (`shape_error`) and strides the view
/// cannot express (`layout_error`).

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <ATen/core/Tensor.h>

#include "ogpsa/bfloat16.hpp"
#include "ogpsa/element.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/float16.hpp"
#include "ogpsa/memory_space.hpp"
#include "ogpsa/tensor_view.hpp"

namespace ogpsa::torch {
namespace detail {

template <class T>
struct scalar_type_for;  // defined for the elements that have a LibTorch dtype
template <>
struct scalar_type_for<float> {
  static constexpr c10::ScalarType value = c10::ScalarType::Float;
};
template <>
struct scalar_type_for<double> {
  static constexpr c10::ScalarType value = c10::ScalarType::Double;
};
template <>
struct scalar_type_for<bfloat16> {
  static constexpr c10::ScalarType value = c10::ScalarType::BFloat16;
};
template <>
struct scalar_type_for<float16> {
  static constexpr c10::ScalarType value = c10::ScalarType::Half;
};

template <class Space>
struct device_type_for;  // defined for the memory spaces LibTorch has devices for
template <>
struct device_type_for<host_memory_tag> {
  static constexpr c10::DeviceType value = c10::DeviceType::CPU;
};
template <>
struct device_type_for<cuda_memory_tag> {
  static constexpr c10::DeviceType value = c10::DeviceType::CUDA;
};

}  // namespace detail

/// An ogpsa element type with a bit-compatible LibTorch dtype (cv-qualifiers ignored).
template <class T>
concept torch_element = element<T> && requires {
  detail::scalar_type_for<std::remove_cv_t<T>>::value;
};

/// A memory space whose tensors LibTorch has a device type for.
template <class Space>
concept torch_memory_space = memory_space<Space> && requires {
  detail::device_type_for<Space>::value;
};

/// The LibTorch dtype whose elements are bit-compatible with ogpsa element `T`.
template <torch_element T>
inline constexpr c10::ScalarType scalar_type_of = detail::scalar_type_for<std::remove_cv_t<T>>::value;

/// The LibTorch device type of tensors living in memory space `Space`.
template <torch_memory_space Space>
inline constexpr c10::DeviceType device_type_of = detail::device_type_for<Space>::value;

namespace detail {

/// Throws unless `t` is a defined, strided tensor of `T`'s dtype on `Space`'s device.
template <torch_element T, torch_memory_space Space>
void check_viewable(const at::Tensor& t, const char* where) {
  OGPSA_REQUIRE(t.defined(), invalid_argument, where,
                "the tensor is undefined (a parameter's grad() before its first backward pass?)");
  OGPSA_REQUIRE(t.layout() == c10::kStrided, layout_error, where,
                "only strided (dense) tensors can be viewed, got layout " << t.layout());
  OGPSA_REQUIRE(t.scalar_type() == scalar_type_of<T>, invalid_argument, where,
                "a tensor of dtype " << t.scalar_type() << " cannot be viewed as ogpsa "
                                     << element_traits<std::remove_cv_t<T>>::name << " (which needs "
                                     << scalar_type_of<T> << ")");
  OGPSA_REQUIRE(t.device().type() == device_type_of<Space>, invalid_argument, where,
                "a tensor on device " << t.device() << " cannot be viewed in ogpsa " << Space::name
                                      << " memory (which needs device type " << device_type_of<Space> << ")");
}

template <torch_element T>
T* data_of(const at::Tensor& t) {
  // The dtype was checked, and the ogpsa element is bit-compatible with it.
  return static_cast<T*>(t.data_ptr());
}

}  // namespace detail

/// A view of `t` with its own sizes and strides; `Rank` must be `t.dim()`.
///
/// \tparam T      element type; `const T` gives a read-only view
/// \tparam Rank   number of dimensions, at least 1
/// \tparam Space  the memory space `t`'s device belongs to
/// \throws as listed in this header's description.
template <torch_element T, std::size_t Rank, torch_memory_space Space = host_memory_tag>
  requires(Rank >= 1)
strided_view<T, Rank, Space> view(const at::Tensor& t) {
  constexpr const char* where = "ogpsa::torch::view";
  detail::check_viewable<T, Space>(t, where);
  OGPSA_REQUIRE(t.dim() == static_cast<std::int64_t>(Rank), shape_error, where,
                "expected a " << Rank << "-dimensional tensor, got " << t.dim() << " dimensions (sizes "
                              << t.sizes() << ")");
  typename strided_view<T, Rank, Space>::extents_type extents{}, strides{};
  for (std::size_t r = 0; r < Rank; ++r) {
    extents[r] = static_cast<index_t>(t.size(static_cast<std::int64_t>(r)));
    strides[r] = static_cast<index_t>(t.stride(static_cast<std::int64_t>(r)));
  }
  return {detail::data_of<T>(t), extents, strides};
}

/// A rank-1 view of all of `t`'s elements in row-major (C, PyTorch) order, any number of
/// dimensions. \throws layout_error unless `t` is contiguous, and as listed above.
template <torch_element T, torch_memory_space Space = host_memory_tag>
vector_view<T, Space> flat_view(const at::Tensor& t) {
  constexpr const char* where = "ogpsa::torch::flat_view";
  detail::check_viewable<T, Space>(t, where);
  OGPSA_REQUIRE(
      t.is_contiguous(), layout_error, where,
      "a flat view needs a contiguous tensor (sizes " << t.sizes() << ", strides " << t.strides() << ")");
  return vector_view<T, Space>(detail::data_of<T>(t), {static_cast<index_t>(t.numel())});
}

/// `t` as a matrix with one row per index of its first dimension (the mode-1 matricization):
/// a Linear weight (out x in) stays out x in, a convolution weight (out x in x kh x kw) becomes
/// out x (in kh kw), a bias (n) becomes n x 1 and a scalar 1 x 1. Two-dimensional tensors keep
/// their strides (a transposed weight is viewed as such); more dimensions must be contiguous.
/// This is the form `projected_optimizer` registers every parameter in.
/// \throws layout_error for a non-contiguous tensor of more than two dimensions, and as above.
template <torch_element T, torch_memory_space Space = host_memory_tag>
matrix_view<T, Space> matricized_view(const at::Tensor& t) {
  constexpr const char* where = "ogpsa::torch::matricized_view";
  detail::check_viewable<T, Space>(t, where);
  if (t.dim() == 2) return view<T, 2, Space>(t);
  if (t.dim() < 2) {
    const index_t rows = t.dim() == 0 ? 1 : static_cast<index_t>(t.size(0));
    const index_t stride = t.dim() == 0 ? 1 : static_cast<index_t>(t.stride(0));
    return matrix_view<T, Space>(detail::data_of<T>(t), {rows, 1}, {stride, 1});
  }
  OGPSA_REQUIRE(t.is_contiguous(), layout_error, where,
                "a tensor of " << t.dim() << " dimensions is matricized only when contiguous (sizes "
                               << t.sizes() << ", strides " << t.strides() << ")");
  const auto rows = static_cast<index_t>(t.size(0));
  index_t cols = 1;
  for (std::int64_t r = 1; r < t.dim(); ++r) cols *= static_cast<index_t>(t.size(r));
  return matrix_view<T, Space>(detail::data_of<T>(t), {rows, cols});
}

}  // namespace ogpsa::torch
