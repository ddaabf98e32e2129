#pragma once
/// \file
/// The internal, rank-erased form every view is reduced to before a backend touches it: a strided
/// matrix whose columns are vectors of the block's target space (see `ogpsa::family`), and a
/// view's extents and strides as a block records them (compared, and written in messages).

#include <algorithm>
#include <cstddef>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ogpsa/config.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/family.hpp"
#include "ogpsa/tensor_view.hpp"

namespace ogpsa::detail {

/// A strided matrix of `T` in `Space`; at least one of the two strides is 1.
template <class T, class Space>
struct matrix_ref {
  T* data = nullptr;
  index_t rows = 0;
  index_t cols = 0;
  index_t row_stride = 1;
  index_t col_stride = 0;

  index_t size() const noexcept { return rows * cols; }
  bool column_major() const noexcept { return row_stride == 1; }
  matrix_ref transposed() const noexcept { return {data, cols, rows, col_stride, row_stride}; }
  /// A dense column-major matrix as one column of all its elements, in memory order.
  matrix_ref as_vector() const noexcept { return {data, size(), 1, 1, size()}; }
  /// Columns [first, first + count).
  matrix_ref middle_cols(index_t first, index_t count) const noexcept {
    return {data + first * col_stride, rows, count, row_stride, col_stride};
  }
};

/// A dense column-major matrix of the backend in `Space` (`data()`, `rows()`, `cols()`), read-only.
template <class Space, class Matrix>
auto dense_columns(const Matrix& m) {
  using T = const std::remove_pointer_t<decltype(m.data())>;
  const auto rows = static_cast<index_t>(m.rows());
  return matrix_ref<T, Space>{m.data(), rows, static_cast<index_t>(m.cols()), 1, std::max<index_t>(rows, 1)};
}

/// The extents of a view, one per dimension (a block's record of its registered shape).
template <tensor_view View>
std::vector<index_t> extents_of(const View& v) {
  std::vector<index_t> e(View::rank());
  for (std::size_t r = 0; r < View::rank(); ++r) e[r] = static_cast<index_t>(v.extent(r));
  return e;
}

/// The strides of a view, in elements, one per dimension.
template <tensor_view View>
std::vector<index_t> strides_of(const View& v) {
  std::vector<index_t> s(View::rank());
  for (std::size_t r = 0; r < View::rank(); ++r) s[r] = static_cast<index_t>(v.stride(r));
  return s;
}

/// Extents or strides for messages: "[4, 5]".
inline std::string format_indices(const std::vector<index_t>& values) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < values.size(); ++i) os << (i ? ", " : "") << values[i];
  os << ']';
  return os.str();
}

/// Whether two dense layouts of `extents` put every element at the same offset: their strides
/// agree on every dimension that is stepped over (extent > 1).
inline bool same_memory_order(const std::vector<index_t>& extents, const std::vector<index_t>& a,
                              const std::vector<index_t>& b) {
  for (std::size_t r = 0; r < extents.size(); ++r)
    if (extents[r] > 1 && a[r] != b[r]) return false;
  return true;
}

/// Dense strides of `extents` with the last dimension fastest (row-major) or the first.
inline std::vector<index_t> dense_strides(const std::vector<index_t>& extents, bool last_fastest) {
  std::vector<index_t> s(extents.size());
  index_t step = 1;
  for (std::size_t i = 0; i < extents.size(); ++i) {
    const std::size_t r = last_fastest ? extents.size() - 1 - i : i;
    s[r] = step;
    step *= std::max<index_t>(extents[r], 1);
  }
  return s;
}

/// A dense layout for messages: "row-major (strides [30, 1])", "column-major (...)" or
/// "strides [...]" for the other orders of three or more dimensions.
inline std::string describe_memory_order(const std::vector<index_t>& extents,
                                         const std::vector<index_t>& strides) {
  const std::string list = "strides " + format_indices(strides);
  if (same_memory_order(extents, strides, dense_strides(extents, true)))
    return "row-major (" + list + ")";
  if (same_memory_order(extents, strides, dense_strides(extents, false)))
    return "column-major (" + list + ")";
  return list;
}

/// Number of rows of the target space of a view of these extents, for `f` (flat: numel).
template <tensor_view View>
index_t target_dimension(const View& v, family f) {
  switch (f) {
    case family::flat:
      return ogpsa::element_count(v);
    case family::left: return v.extent(0);
    case family::right: return v.extent(1);
  }
  return 0;
}

/// Reduces `v` to the matrix whose columns are the block's target-space vectors:
/// flat -> vec(v) (d x 1, in memory order), left -> v (m x n), right -> v^T (n x m).
/// \throws layout_error when the view's strides do not allow it, shape_error for a wrong rank.
template <tensor_view View>
auto target_columns(const View& v, family f, std::string_view where) {
  using ref = matrix_ref<typename View::element_type, typename View::memory_space>;
  if (f == family::flat) {
    OGPSA_REQUIRE(
        ogpsa::is_exhaustive(v), layout_error, where,
        "a flat block needs a contiguous view (rank " << View::rank() << ", strides are not dense)");
    const index_t d = ogpsa::element_count(v);
    return ref{v.data_handle(), d, 1, 1, d};
  }
  if constexpr (View::rank() != 2) {
    OGPSA_FAIL(shape_error, where,
               "a " << f << " block needs a rank-2 view (got rank " << View::rank()
                    << "); reshape it to (rows, cols) first");
  } else {
    const index_t m = v.extent(0), n = v.extent(1);
    // A stride that is never stepped over (extent <= 1) is normalized so that the pair reads as
    // one of the two dense orders Eigen maps directly.
    const index_t rs = m <= 1 ? 1 : v.stride(0);
    const index_t cs = n <= 1 ? (rs == 1 ? std::max<index_t>(m, 1) : 1) : v.stride(1);
    const bool column_major = rs == 1 && cs >= std::max<index_t>(m, 1);
    const bool row_major = cs == 1 && rs >= std::max<index_t>(n, 1);
    OGPSA_REQUIRE(column_major || row_major, layout_error, where,
                  "a " << f << " block needs one unit stride and non-overlapping rows/columns"
                       << " (extents " << m << " x " << n << ", strides " << v.stride(0) << ", "
                       << v.stride(1) << ")");
    const ref g{v.data_handle(), m, n, rs, cs};
    return f == family::left ? g : g.transposed();
  }
}

}  // namespace ogpsa::detail
