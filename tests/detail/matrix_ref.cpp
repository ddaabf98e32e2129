#include <doctest/doctest.h>

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
