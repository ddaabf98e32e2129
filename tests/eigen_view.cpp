#include <doctest/doctest.h>

#include <ogpsa/eigen_view.hpp>

TEST_CASE("column-major Eigen matrices keep their strides") {
  Eigen::MatrixXf m(3, 4);
  const auto v = ogpsa::view(m);
  CHECK(v.rank() == 2);
  CHECK(v.extent(0) == 3);
  CHECK(v.extent(1) == 4);
  CHECK(v.stride(0) == 1);
  CHECK(v.stride(1) == 3);
  CHECK(v.data_handle() == m.data());
}

TEST_CASE("row-major Eigen matrices keep their strides") {
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> m(3, 4);
  const auto v = ogpsa::view(m);
  CHECK(v.stride(0) == 4);
  CHECK(v.stride(1) == 1);
}

TEST_CASE("Eigen vectors are rank-1 views and const objects are read-only") {
  Eigen::VectorXd x(5);
  const auto v = ogpsa::view(x);
  CHECK(v.rank() == 1);
  CHECK(v.extent(0) == 5);
  const Eigen::VectorXd& cx = x;
  CHECK(std::is_same_v<decltype(ogpsa::view(cx))::element_type, const double>);
}

TEST_CASE("Maps with an outer stride and blocks view the parent's storage") {
  float buffer[40] = {};
  Eigen::Map<Eigen::MatrixXf, 0, Eigen::OuterStride<>> m(buffer, 3, 4, Eigen::OuterStride<>(10));
  const auto v = ogpsa::view(m);
  CHECK(v.stride(1) == 10);
  CHECK_FALSE(v.is_exhaustive());
  Eigen::MatrixXf big(6, 6);
  auto block = big.block(1, 2, 3, 2);
  const auto b = ogpsa::view(block);
  CHECK(b.data_handle() == &big(1, 2));
  CHECK(b.stride(1) == 6);
}
