#pragma once
// Helpers shared by the estimator tests: feeding a matrix's columns to an estimator pass as a
// stream, and the fp64 reference they are compared with.

#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

#include <Eigen/SVD>

#include <ogpsa/cpu/backend.hpp>
#include <ogpsa/detail/matrix_ref.hpp>
#include <ogpsa/detail/rounds.hpp>
#include <ogpsa/eigen_view.hpp>
#include <ogpsa/family.hpp>
#include <ogpsa/subspace.hpp>

#include "support.hpp"

namespace ogpsa::test {

using cpu_backend = cpu::backend;

template <class Estimator, class T>
using pass_of = typename Estimator::template pass<cpu_backend, T>;

/// Feeds the columns of `data` to `s` in chunks of `per_feed` columns (the last may be shorter).
template <class State, class T>
void feed_columns(State& s, const matrix<T>& data, Eigen::Index per_feed) {
  cpu::execution exec;
  for (Eigen::Index j = 0; j < data.cols(); j += per_feed) {
    const matrix<T> chunk = data.middleCols(j, std::min(per_feed, data.cols() - j));
    s.feed(exec, detail::target_columns(view(chunk), family::left, "test"), 0);
  }
}

/// The subspace `params` estimates from the columns of `data`, fed `per_feed` at a time.
template <class T, class Estimator>
subspace<T, cpu_backend> estimate(const Estimator& params, const matrix<T>& data, Eigen::Index per_feed) {
  cpu::execution exec;
  pass_of<Estimator, T> s(params, data.rows(), "w");
  feed_columns(s, data, per_feed);
  return s.finish(exec);
}

/// The exact top-k left singular vectors of `data` in double (Eigen's divide and conquer SVD).
template <class T>
matrix<double> reference_basis(const matrix<T>& data, Eigen::Index k) {
  Eigen::BDCSVD<matrix<double>> svd(data.template cast<double>(), Eigen::ComputeThinU);
  return svd.matrixU().leftCols(k);
}

/// The exact singular values of `data`, descending.
template <class T>
vector<double> singular_values(const matrix<T>& data) {
  return Eigen::BDCSVD<matrix<double>>(data.template cast<double>()).singularValues();
}

/// Largest principal-angle sine between an estimated basis and the exact top directions of `data`.
template <class T>
double sine_to_exact(const subspace<T, cpu_backend>& s, const matrix<T>& data) {
  return max_principal_sine(s.basis.template cast<double>(), reference_basis(data, s.rank()));
}

/// Whether every direction points along the data it came from (u_i^T sum_j a_j >= 0), the
/// orientation all SVD estimators promise.
template <class T>
bool points_along_data(const subspace<T, cpu_backend>& s, const matrix<T>& data) {
  const vector<double> along = s.basis.template cast<double>().transpose() * data.template cast<double>().rowwise().sum();
  return (along.array() >= 0).all();
}

/// Drives a sharded estimate as the only rank (a sum over one rank is the value itself), replacing
/// the request of round `zeroed` (counted from 1) by zeros; returns the length of every round's
/// request. The estimate's result stays in `task`.
template <class Task>
std::vector<std::size_t> run_zeroing_round(Task& task, std::size_t zeroed) {
  std::vector<std::size_t> lengths;
  while (detail::advance(task)) {
    std::size_t length = 0;
    for (std::span<double> part : task.request()) length += part.size();
    lengths.push_back(length);
    if (lengths.size() == zeroed)
      for (std::span<double> part : task.request()) std::fill(part.begin(), part.end(), 0.0);
  }
  return lengths;
}

}  // namespace ogpsa::test
