#include <vector>

#include <doctest/doctest.h>
#include <Eigen/Core>

#include <ogpsa/detail/matrix_ref.hpp>

#include "support.hpp"

using ogpsa::family;
using ogpsa::detail::target_columns;

TEST_CASE("flat blocks become one column of every element") {
  float x[24] = {};
  const auto r = target_columns(ogpsa::view(x, 2, 3, 4), family::flat, "t");
  CHECK(r.rows == 24);
  CHECK(r.cols == 1);
  CHECK(r.data == x);
}

TEST_CASE("left blocks are the matrix, right blocks its transpose") {
  float x[12] = {};
  const auto v = ogpsa::view(x, 3, 4);  // row-major
  const auto left = target_columns(v, family::left, "t");
  CHECK(left.rows == 3);
  CHECK(left.cols == 4);
  CHECK_FALSE(left.column_major());
  const auto right = target_columns(v, family::right, "t");
  CHECK(right.rows == 4);
  CHECK(right.cols == 3);
  CHECK(right.column_major());
  CHECK(ogpsa::detail::target_dimension(v, family::right) == 4);
}

TEST_CASE("views the families cannot use are clear errors") {
  float x[64] = {};
  const ogpsa::matrix_view<float> padded(x, {4, 5}, {8, 1});
  ogpsa::test::check_throws_with<ogpsa::layout_error>(
      [&] { target_columns(padded, family::flat, "ogpsa::projector::add_block"); },
      {"ogpsa::projector::add_block()", "contiguous"});
  CHECK_NOTHROW(target_columns(padded, family::left, "t"));  // one unit stride suffices
  const ogpsa::matrix_view<float> strided(x, {4, 5}, {10, 2});
  ogpsa::test::check_throws_with<ogpsa::layout_error>(
      [&] { target_columns(strided, family::left, "t"); }, {"unit stride", "10, 2"});
  ogpsa::test::check_throws_with<ogpsa::shape_error>(
      [&] { target_columns(ogpsa::view(x, 2, 2, 2), family::right, "t"); }, {"rank-2", "rank 3"});
}

TEST_CASE("middle_cols selects columns in either layout") {
  float x[12] = {};
  const auto v = ogpsa::view(x, 3, 4);  // row-major
  const auto cols = target_columns(v, family::left, "t").middle_cols(1, 2);
  CHECK(cols.data == x + 1);
  CHECK(cols.rows == 3);
  CHECK(cols.cols == 2);
  CHECK(cols.row_stride == 4);
  const auto rows = target_columns(v, family::right, "t").middle_cols(2, 1);
  CHECK(rows.data == x + 8);
  CHECK(rows.rows == 4);
  CHECK(rows.cols == 1);
}

TEST_CASE("memory orders agree when every stepped-over stride does") {
  using ogpsa::detail::same_memory_order;
  CHECK(same_memory_order({40, 30}, {30, 1}, {30, 1}));
  CHECK_FALSE(same_memory_order({40, 30}, {30, 1}, {1, 40}));
  CHECK(same_memory_order({1, 30}, {30, 1}, {1, 1}));  // extent 1: its stride is never used
  CHECK(same_memory_order({2, 1, 4}, {4, 4, 1}, {4, 99, 1}));
  CHECK_FALSE(same_memory_order({2, 3, 4}, {12, 4, 1}, {12, 1, 3}));
}

TEST_CASE("memory orders are described by name where they have one") {
  using ogpsa::detail::describe_memory_order;
  CHECK(describe_memory_order({40, 30}, {30, 1}) == "row-major (strides [30, 1])");
  CHECK(describe_memory_order({40, 30}, {1, 40}) == "column-major (strides [1, 40])");
  CHECK(describe_memory_order({2, 3, 4}, {1, 2, 6}) == "column-major (strides [1, 2, 6])");
  CHECK(describe_memory_order({2, 3, 4}, {3, 1, 6}) == "strides [3, 1, 6]");
  CHECK(ogpsa::detail::dense_strides({2, 3, 4}, true) == std::vector<ogpsa::index_t>{12, 4, 1});
  CHECK(ogpsa::detail::dense_strides({2, 0, 4}, false) == std::vector<ogpsa::index_t>{1, 2, 2});
}

TEST_CASE("a dense matrix is read in place as columns and as one vector") {
  const Eigen::MatrixXf m = Eigen::MatrixXf::Random(3, 4);
  const auto r = ogpsa::detail::dense_columns<ogpsa::host_memory_tag>(m);
  CHECK(r.data == m.data());
  CHECK(r.rows == 3);
  CHECK(r.cols == 4);
  CHECK(r.column_major());
  CHECK(r.col_stride == 3);
  const auto v = r.as_vector();
  CHECK(v.rows == 12);
  CHECK(v.cols == 1);
  CHECK(v.data == m.data());
  CHECK(ogpsa::detail::dense_columns<ogpsa::host_memory_tag>(Eigen::MatrixXf(0, 2)).col_stride == 1);
}
