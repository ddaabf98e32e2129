#pragma once
/// \file
/// The `tensor_view` concept and its one model, `strided_view`, in the vocabulary of `std::mdspan`
/// (element type, extents, strides, data handle) plus the memory space the data lives in.
///
/// Views never own data: ogpsa reads and writes a framework's gradient buffers in place. A view is
/// trivially copyable and cheap to pass by value. `ogpsa::view(...)` builds one from a raw pointer
/// and extents, a `std::span` or a `std::vector`; `<ogpsa/eigen_view.hpp>` adds Eigen objects and
/// `<ogpsa/torch.hpp>` adds `at::Tensor`.

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "ogpsa/config.hpp"
#include "ogpsa/element.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/memory_space.hpp"

namespace ogpsa {

/// A non-owning, trivially copyable view of a strided tensor in a known memory space.
///
/// Requirements, as in `std::mdspan` plus a memory space: member types `element_type`,
/// `index_type` and `memory_space`; a static constexpr `rank()`; `extent(r)` and `stride(r)` (in elements)
/// for every `r < rank()`; `data_handle()` returning `element_type*`. Nothing else: what ogpsa
/// derives from these (`element_count`, `is_exhaustive`) are free functions that take any model.
template <class View>
concept tensor_view =
    std::is_trivially_copyable_v<View> && element<typename View::element_type> &&
    memory_space<typename View::memory_space> &&
    requires(const View& v, std::size_t r) {
      typename View::index_type;
      { View::rank() } -> std::convertible_to<std::size_t>;
      typename std::integral_constant<std::size_t, View::rank()>;  // a constant expression
      { v.extent(r) } -> std::convertible_to<index_t>;
      { v.stride(r) } -> std::convertible_to<index_t>;
      { v.data_handle() } -> std::same_as<typename View::element_type*>;
    };

    namespace detail {

    /// Whether the (extent, stride) pairs fill prod(extents) consecutive slots without gaps, in any
    /// dimension order. Dimensions of extent 1 may carry any stride; an empty view is exhaustive.
    template <std::size_t Rank>
    constexpr bool is_dense(const std::array<index_t, Rank>& extents,
                            const std::array<index_t, Rank>& strides) noexcept {
      std::array<std::pair<index_t, index_t>, Rank> dims{};  // (stride, extent) of dims with extent > 1
      std::size_t used = 0;
      for (std::size_t r = 0; r < Rank; ++r) {
        if (extents[r] == 0) return true;
        if (extents[r] > 1) dims[used++] = {strides[r], extents[r]};
      }
      for (std::size_t i = 1; i < used; ++i)  // insertion sort by stride: Rank is tiny
        for (std::size_t j = i; j > 0 && dims[j].first < dims[j - 1].first; --j)
          std::swap(dims[j], dims[j - 1]);
      index_t expected = 1;
      for (std::size_t i = 0; i < used; ++i) {
        if (dims[i].first != expected) return false;
        expected *= dims[i].second;
      }
      return true;
    }

    /// The extents of any view, as the array `strided_view` takes.
    template <tensor_view View>
    constexpr std::array<index_t, View::rank()> extents_array(const View& v) noexcept {
      std::array<index_t, View::rank()> a{};
      for (std::size_t r = 0; r < View::rank(); ++r) a[r] = static_cast<index_t>(v.extent(r));
      return a;
    }

    /// The strides of any view, in elements, as the array `strided_view` takes.
    template <tensor_view View>
    constexpr std::array<index_t, View::rank()> strides_array(const View& v) noexcept {
      std::array<index_t, View::rank()> a{};
      for (std::size_t r = 0; r < View::rank(); ++r) a[r] = static_cast<index_t>(v.stride(r));
      return a;
    }

    }  // namespace detail

    /// Number of elements of any view: the product of its extents.
    template <tensor_view View>
    constexpr index_t element_count(const View& v) noexcept {
      index_t n = 1;
      for (std::size_t r = 0; r < View::rank(); ++r) n *= static_cast<index_t>(v.extent(r));
      return n;
    }

    /// True when the view's elements fill `element_count(v)` consecutive slots without gaps, in any
    /// dimension order (mdspan's "exhaustive" layout). Dimensions of extent 1 may carry any stride.
    template <tensor_view View>
    constexpr bool is_exhaustive(const View& v) noexcept {
      return detail::is_dense(detail::extents_array(v), detail::strides_array(v));
    }

/// A tensor view whose elements may be written (the gradient being projected).
template <class View>
concept mutable_tensor_view = tensor_view<View> && !std::is_const_v<typename View::element_type>;

/// A tensor view living in memory space `Space`.
template <class View, class Space>
concept tensor_view_in = tensor_view<View> && std::same_as<typename View::memory_space, Space>;

/// The model of `tensor_view`: pointer, extents and strides (in elements), like
/// `std::mdspan<T, dextents<index_t, Rank>, layout_stride>`, tagged with its memory space.
///
/// \tparam T      element type, `const`-qualified for read-only data
/// \tparam Rank   number of dimensions, at least 1
/// \tparam Space  memory-space tag (`host_memory_tag` or `cuda_memory_tag`)
template <element T, std::size_t Rank, memory_space Space = host_memory_tag>
  requires(Rank >= 1)
class strided_view {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using index_type = index_t;
  using data_handle_type = T*;
  using memory_space = Space;
  using extents_type = std::array<index_t, Rank>;

  constexpr strided_view() = default;

  /// A view with explicit strides. \throws invalid_argument for a negative extent.
  constexpr strided_view(T* data, const extents_type& extents, const extents_type& strides)
      : data_(data), extents_(extents), strides_(strides) {
    for (std::size_t r = 0; r < Rank; ++r)
      OGPSA_REQUIRE(extents_[r] >= 0, invalid_argument, "ogpsa::strided_view",
                    "extent " << r << " is negative (" << extents_[r] << ")");
  }

  /// A dense row-major view (`std::layout_right`, the C and PyTorch order).
  constexpr strided_view(T* data, const extents_type& extents)
      : strided_view(data, extents, row_major_strides(extents)) {}

  /// Read-only views convert implicitly from writable ones.
  template <class U>
    requires std::same_as<T, const U>
  constexpr strided_view(const strided_view<U, Rank, Space>& other)  // NOLINT(google-explicit-constructor)
      : data_(other.data_handle()) {
    for (std::size_t r = 0; r < Rank; ++r) {
      extents_[r] = other.extent(r);
      strides_[r] = other.stride(r);
    }
  }

  static constexpr std::size_t rank() noexcept { return Rank; }
  constexpr index_t extent(std::size_t r) const noexcept { return extents_[r]; }
  constexpr index_t stride(std::size_t r) const noexcept { return strides_[r]; }
  constexpr const extents_type& extents() const noexcept { return extents_; }
  constexpr const extents_type& strides() const noexcept { return strides_; }
  constexpr T* data_handle() const noexcept { return data_; }

  /// Number of elements, the product of the extents (`ogpsa::element_count`).
  constexpr index_t size() const noexcept { return ogpsa::element_count(*this); }
  constexpr bool empty() const noexcept { return size() == 0; }

  /// True when the elements fill `size()` consecutive slots without gaps, in any dimension order
  /// (`ogpsa::is_exhaustive`).
  constexpr bool is_exhaustive() const noexcept { return detail::is_dense(extents_, strides_); }

  static constexpr extents_type row_major_strides(const extents_type& extents) noexcept {
    extents_type strides{};
    index_t s = 1;
    for (std::size_t r = Rank; r-- > 0;) {
      strides[r] = s;
      s *= std::max<index_t>(extents[r], 1);
    }
    return strides;
  }

 private:
  T* data_ = nullptr;
  extents_type extents_{};
  extents_type strides_{};
};

/// One-dimensional and two-dimensional views, the shapes ogpsa computes on.
template <element T, memory_space Space = host_memory_tag>
using vector_view = strided_view<T, 1, Space>;
template <element T, memory_space Space = host_memory_tag>
using matrix_view = strided_view<T, 2, Space>;

/// A dense row-major view of `data` with the given extents: `ogpsa::view(ptr, rows, cols)`.
/// Name the memory space for device pointers: `ogpsa::view<ogpsa::cuda_memory_tag>(ptr, n)`.
template <memory_space Space = host_memory_tag, element T, std::integral... Extents>
constexpr auto view(T* data, index_t first, Extents... rest) {
  using result = strided_view<T, 1 + sizeof...(Extents), Space>;
  return result(data, typename result::extents_type{first, static_cast<index_t>(rest)...});
}

/// A rank-1 host view of a span.
template <element T, std::size_t N>
constexpr auto view(std::span<T, N> s) {
  return vector_view<T>(s.data(), {static_cast<index_t>(s.size())});
}

/// A rank-1 host view of a vector's elements (`const` vectors give read-only views).
template <element T, class Alloc>
auto view(std::vector<T, Alloc>& v) {
  return vector_view<T>(v.data(), {static_cast<index_t>(v.size())});
}
template <element T, class Alloc>
auto view(const std::vector<T, Alloc>& v) {
  return vector_view<const T>(v.data(), {static_cast<index_t>(v.size())});
}
/// Viewing a temporary vector would dangle.
template <element T, class Alloc>
void view(std::vector<T, Alloc>&&) = delete;

/// A read-only version of any view: a `strided_view` of the same elements, extents, strides and
/// memory space (a view of the library's own type, or of any other model of `tensor_view`).
template <tensor_view View>
  requires(View::rank() >= 1)
constexpr auto as_const(const View& v) {
  using result = strided_view<const typename View::element_type, View::rank(), typename View::memory_space>;
  if constexpr (std::is_convertible_v<View, result>)
    return result(v);  // a strided_view: its extents were checked when it was made
  else
    return result(v.data_handle(), detail::extents_array(v), detail::strides_array(v));
}

}  // namespace ogpsa
