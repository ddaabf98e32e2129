#pragma once
// Helpers shared by the tests: per-type tolerances, seeded random data and subspace comparisons.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <utility>

#include <Eigen/Core>
#include <Eigen/SVD>
#include <doctest/doctest.h>

#include <ogpsa/bfloat16.hpp>
#include <ogpsa/detail/convert.hpp>
#include <ogpsa/element.hpp>
#include <ogpsa/float16.hpp>

TYPE_TO_STRING(ogpsa::bfloat16);
TYPE_TO_STRING(ogpsa::float16);

namespace ogpsa::test {

template <class T>
using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <class T>
using vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

/// (gradient, basis) element types the kernels are tested over: each type alone, and the mixes
/// that `storage<Gradient, Basis>` is meant for (16-bit bases or gradients, fp64 accumulation).
using element_pairs =
    std::tuple<std::pair<float, float>, std::pair<double, double>,
               std::pair<ogpsa::bfloat16, ogpsa::bfloat16>, std::pair<ogpsa::float16, ogpsa::float16>,
               std::pair<float, ogpsa::bfloat16>, std::pair<ogpsa::bfloat16, float>,
               std::pair<float, ogpsa::float16>, std::pair<float, double>>;

/// Relative tolerance for results that went through O(d) accumulations in T.
template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

/// The largest relative error of rounding to T: 2^-p for p significant bits.
template <class T>
constexpr double unit_roundoff() {
  if constexpr (std::is_same_v<T, float>) return 0x1p-24;
  else if constexpr (std::is_same_v<T, double>) return 0x1p-53;
  else if constexpr (std::is_same_v<T, ogpsa::bfloat16>) return 0x1p-8;
  else return 0x1p-11;  // float16
}

/// Tolerance for a projection of T gradients on a B basis: their accumulator's, plus rounding the
/// result to T (with a factor 2 for the rounding of the coefficients' contribution).
template <class T, class B>
constexpr double projection_tolerance() {
  return tolerance<ogpsa::accumulator_t<T, B>>() + 2 * unit_roundoff<T>();
}

template <class T>
matrix<T> random_matrix(Eigen::Index rows, Eigen::Index cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  matrix<T> m(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = ogpsa::detail::narrow<T>(normal(rng));
  return m;
}

/// d x k with orthonormal columns, from the QR factorization of a Gaussian matrix.
template <class T>
matrix<T> random_orthonormal(Eigen::Index d, Eigen::Index k, std::uint32_t seed) {
  const matrix<double> q = random_matrix<double>(d, k, seed).householderQr().householderQ() *
                           matrix<double>::Identity(d, k);
  return q.cast<T>();
}

/// rank-r signal with singular values 1, decay, decay^2, ... plus Gaussian noise of the given
/// relative size per entry.
template <class T>
matrix<T> low_rank_plus_noise(Eigen::Index rows, Eigen::Index cols, Eigen::Index rank,
                              double noise, std::uint32_t seed, double decay = 0.7) {
  const matrix<double> a = random_matrix<double>(rows, rank, seed).householderQr().householderQ() *
                           matrix<double>::Identity(rows, rank);
  const matrix<double> b = random_matrix<double>(cols, rank, seed + 1).householderQr().householderQ() *
                           matrix<double>::Identity(cols, rank);
  vector<double> s(rank);
  for (Eigen::Index i = 0; i < rank; ++i) s(i) = std::pow(decay, static_cast<double>(i));
  matrix<double> m = a * s.asDiagonal() * b.transpose();
  m += noise / std::sqrt(static_cast<double>(rows * cols)) * random_matrix<double>(rows, cols, seed + 2) *
       std::sqrt(static_cast<double>(rank));
  return m.cast<T>();
}

/// Largest principal-angle sine between the column spans of two orthonormal bases of equal rank,
/// computed as the norm of (I - U U^T) V so that small angles are not lost to rounding (the
/// route through cosines has a floor of sqrt(eps)).
inline double max_principal_sine(const matrix<double>& u, const matrix<double>& v) {
  const matrix<double> residual = v - u * (u.transpose() * v);
  return Eigen::JacobiSVD<matrix<double>>(residual).singularValues()(0);
}

/// `m` widened to double, element by element (16-bit types go through float).
template <class M>
matrix<double> to_double(const M& m) {
  return m.unaryExpr([](auto v) { return ogpsa::detail::widen<double>(v); });
}

/// The straightforward projection in double, the reference every kernel is checked against:
/// per column of x, c = U^T x, then x <- s x - U r where the rule turns c into (r, s).
template <class Rule>
matrix<double> reference_projection(const matrix<double>& u, matrix<double> x, const Rule& rule) {
  matrix<double> c = u.transpose() * x;
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    const double s = rule.apply(c.col(j).data(), c.rows());
    x.col(j) = s * x.col(j) - u * c.col(j);
  }
  return x;
}

/// Whether two dense matrices hold the same bits (what "bit-identical" claims mean).
template <class M>
bool same_bits(const M& a, const M& b) {
  // memcmp must not see the null data of an empty matrix, even for zero bytes.
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         (a.size() == 0 ||
          std::memcmp(a.data(), b.data(), sizeof(typename M::Scalar) * static_cast<std::size_t>(a.size())) == 0);
}

/// |U^T U - I|, entrywise maximum.
template <class M>
double orthonormality_error(const M& u) {
  const matrix<double> ud = u.template cast<double>();
  return (ud.transpose() * ud - matrix<double>::Identity(u.cols(), u.cols())).cwiseAbs().maxCoeff();
}

/// Checks that `f` throws `E` and that its message contains every fragment.
template <class E, class F>
void check_throws_with(F&& f, std::initializer_list<std::string> fragments) {
  bool thrown = false;
  try {
    f();
  } catch (const E& e) {
    thrown = true;
    const std::string what = e.what();
    for (const std::string& fragment : fragments) {
      INFO("message: " << what);
      CHECK(what.find(fragment) != std::string::npos);
    }
  }
  CHECK_MESSAGE(thrown, "expected an exception of the requested type");
}

}  // namespace ogpsa::test
