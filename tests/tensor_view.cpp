#include <span>
#include <type_traits>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/tensor_view.hpp>

#include "support.hpp"

namespace {

/// A user-defined view type: anything with the mdspan-style members models the concept.
struct user_view {
  using element_type = float;
  using index_type = long;
  using memory_space = ogpsa::host_memory_tag;
  float* ptr;
  long n;
  static constexpr std::size_t rank() { return 1; }
  long extent(std::size_t) const { return n; }
  long stride(std::size_t) const { return 1; }
  float* data_handle() const { return ptr; }
};

/// A user-defined matrix view with any strides, and no members beyond the concept's.
struct user_matrix_view {
  using element_type = const double;
  using index_type = int;
  using memory_space = ogpsa::host_memory_tag;
  const double* ptr;
  int extents[2];
  int strides[2];
  static constexpr std::size_t rank() { return 2; }
  int extent(std::size_t r) const { return extents[r]; }
  int stride(std::size_t r) const { return strides[r]; }
  const double* data_handle() const { return ptr; }
};

/// Has every member but a rank() usable in constant expressions.
struct runtime_rank_view {
  using element_type = float;
  using index_type = long;
  using memory_space = ogpsa::host_memory_tag;
  static std::size_t rank() { return 1; }
  long extent(std::size_t) const { return 0; }
  long stride(std::size_t) const { return 1; }
  float* data_handle() const { return nullptr; }
};

}  // namespace

TEST_CASE("element_count and is_exhaustive take any model of the concept") {
  float f[6] = {};
  CHECK(ogpsa::element_count(user_view{f, 6}) == 6);
  CHECK(ogpsa::is_exhaustive(user_view{f, 6}));
  double x[64] = {};
  using u = user_matrix_view;
  CHECK(ogpsa::element_count(u{x, {4, 5}, {5, 1}}) == 20);
  CHECK(ogpsa::is_exhaustive(u{x, {4, 5}, {5, 1}}));
  CHECK(ogpsa::is_exhaustive(u{x, {4, 5}, {1, 4}}));
  CHECK_FALSE(ogpsa::is_exhaustive(u{x, {4, 5}, {6, 1}}));
  CHECK_FALSE(ogpsa::is_exhaustive(u{x, {4, 5}, {1, 5}}));  // a gap after every column
  CHECK(ogpsa::is_exhaustive(u{x, {1, 5}, {99, 1}}));
  CHECK(ogpsa::element_count(u{x, {0, 5}, {5, 1}}) == 0);
  // strided_view's members are the free functions.
  const ogpsa::matrix_view<double> padded(x, {4, 5}, {8, 1});
  CHECK(padded.size() == ogpsa::element_count(padded));
  CHECK(padded.is_exhaustive() == ogpsa::is_exhaustive(padded));
  CHECK_FALSE(ogpsa::tensor_view<runtime_rank_view>);  // rank() must be a constant expression
}

TEST_CASE("strided_view models tensor_view and is trivially copyable") {
  using v = ogpsa::strided_view<float, 3>;
  CHECK(ogpsa::tensor_view<v>);
  CHECK(ogpsa::mutable_tensor_view<v>);
  CHECK_FALSE(ogpsa::mutable_tensor_view<ogpsa::strided_view<const float, 3>>);
  CHECK(std::is_trivially_copyable_v<v>);
  CHECK(ogpsa::tensor_view_in<ogpsa::vector_view<double, ogpsa::cuda_memory_tag>, ogpsa::cuda_memory_tag>);
  CHECK(ogpsa::tensor_view<user_view>);
  CHECK_FALSE(ogpsa::tensor_view<std::vector<float>>);
}

TEST_CASE("a raw pointer and extents give a dense row-major view") {
  std::vector<float> data(24);
  const auto v = ogpsa::view(data.data(), 2, 3, 4);
  CHECK(v.rank() == 3);
  CHECK(v.extent(0) == 2);
  CHECK(v.extent(2) == 4);
  CHECK(v.stride(0) == 12);
  CHECK(v.stride(1) == 4);
  CHECK(v.stride(2) == 1);
  CHECK(v.size() == 24);
  CHECK(v.data_handle() == data.data());
  CHECK(v.is_exhaustive());
}

TEST_CASE("device pointers are tagged with their memory space") {
  float* device_pointer = nullptr;
  const auto v = ogpsa::view<ogpsa::cuda_memory_tag>(device_pointer, 8);
  CHECK(std::is_same_v<decltype(v)::memory_space, ogpsa::cuda_memory_tag>);
}

TEST_CASE("spans and vectors give rank-1 views, const vectors give read-only views") {
  std::vector<double> data(7, 1.0);
  const auto a = ogpsa::view(data);
  CHECK(std::is_same_v<decltype(a)::element_type, double>);
  CHECK(a.extent(0) == 7);
  const std::vector<double>& cdata = data;
  const auto b = ogpsa::view(cdata);
  CHECK(std::is_same_v<decltype(b)::element_type, const double>);
  const auto c = ogpsa::view(std::span<double>(data).subspan(2, 3));
  CHECK(c.extent(0) == 3);
  CHECK(c.data_handle() == data.data() + 2);
}

TEST_CASE("writable views convert to read-only ones") {
  std::vector<float> data(6);
  const auto v = ogpsa::view(data.data(), 2, 3);
  const ogpsa::matrix_view<const float> r = v;
  CHECK(r.extent(1) == 3);
  CHECK(r.stride(0) == 3);
  CHECK(ogpsa::as_const(v).data_handle() == data.data());
}

TEST_CASE("as_const gives a read-only strided_view of any model of the concept") {
  double x[12] = {};
  const auto c = ogpsa::as_const(user_matrix_view{x, {3, 4}, {1, 3}});
  CHECK(std::is_same_v<decltype(c), const ogpsa::matrix_view<const double>>);
  CHECK(c.data_handle() == x);
  CHECK(c.extents() == ogpsa::matrix_view<const double>::extents_type{3, 4});
  CHECK(c.strides() == ogpsa::matrix_view<const double>::extents_type{1, 3});
  float f[5] = {};
  const auto w = ogpsa::as_const(user_view{f, 5});
  CHECK(std::is_same_v<decltype(w), const ogpsa::vector_view<const float>>);
  CHECK(w.extent(0) == 5);
}

TEST_CASE("is_exhaustive recognizes dense layouts in any order and rejects gaps") {
  float x[64] = {};
  using m = ogpsa::matrix_view<float>;
  CHECK(m(x, {4, 5}, {5, 1}).is_exhaustive());   // row-major
  CHECK(m(x, {4, 5}, {1, 4}).is_exhaustive());   // column-major
  CHECK_FALSE(m(x, {4, 5}, {6, 1}).is_exhaustive());  // padded rows
  CHECK_FALSE(m(x, {4, 5}, {10, 2}).is_exhaustive());
  CHECK(m(x, {1, 5}, {99, 1}).is_exhaustive());  // stride of an extent-1 dimension is irrelevant
  CHECK(m(x, {0, 5}, {7, 3}).is_exhaustive());   // empty
}

TEST_CASE("a negative extent is rejected with the value") {
  float x[4] = {};
  ogpsa::test::check_throws_with<ogpsa::invalid_argument>(
      [&] { ogpsa::matrix_view<float>(x, {2, -3}); }, {"ogpsa::strided_view()", "-3"});
}
