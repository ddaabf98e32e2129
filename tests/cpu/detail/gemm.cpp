#include <doctest/doctest.h>

#include <ogpsa/cpu/detail/gemm.hpp>

#include "cpu/eigen_threads.hpp"
#include "support.hpp"

namespace t = ogpsa::test;
using ogpsa::cpu::detail::gemm_serial;

TEST_CASE_TEMPLATE("gemm_serial adds alpha * lhs * rhs for every storage order", T, float, double) {
  using row_major = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const t::matrix<T> a = t::random_matrix<T>(37, 300, 1), b = t::random_matrix<T>(300, 45, 2);
  const t::matrix<T> c0 = t::random_matrix<T>(37, 45, 3);
  const t::matrix<double> expected = t::to_double(c0) - t::to_double(a) * t::to_double(b);
  auto check = [&](const auto& result) {
    CHECK((t::to_double(result) - expected).cwiseAbs().maxCoeff() < 100 * t::tolerance<T>());
  };
  SUBCASE("column-major operands") {
    t::matrix<T> c = c0;
    gemm_serial(a, b, c, T(-1));
    check(c);
  }
  SUBCASE("row-major operands and destination") {
    const row_major ar = a, br = b;
    row_major c = c0;
    gemm_serial(ar, br, c, T(-1));
    check(c);
  }
  SUBCASE("a transposed left operand and blocks with outer strides") {
    const t::matrix<T> at = a.transpose();
    t::matrix<T> padded = t::matrix<T>::Zero(50, 60);
    padded.block(5, 7, 37, 45) = c0;
    gemm_serial(at.transpose(), b.middleRows(0, 300), padded.block(5, 7, 37, 45), T(-1));
    check(t::matrix<T>(padded.block(5, 7, 37, 45)));
    CHECK(padded.topRows(5).isZero(0));
  }
  SUBCASE("an empty inner dimension adds nothing") {
    t::matrix<T> c = c0;
    gemm_serial(a.leftCols(0), b.topRows(0), c, T(-1));
    CHECK(c == c0);
  }
}

TEST_CASE_TEMPLATE("serial_product is lhs * rhs, in the same bits whatever Eigen's own thread count", T, float,
                   double) {
  const t::matrix<T> a = t::random_matrix<T>(300, 1000, 4), b = t::random_matrix<T>(1000, 64, 5);
  t::matrix<T> one;
  {
    const t::eigen_threads eigen(1);
    one = ogpsa::cpu::detail::serial_product(a, b);
  }
  CHECK((t::to_double(one) - t::to_double(a) * t::to_double(b)).cwiseAbs().maxCoeff() < 1000 * t::tolerance<T>());
  const t::eigen_threads eigen(8);
  CHECK(t::same_bits(t::matrix<T>(ogpsa::cpu::detail::serial_product(a, b)), one));
}
