#pragma once
// The data of the sharded-projection tests, shared by the in-process (tests/sharding.cpp) and the
// multi-process (tests/torch/c10d_reducer.cpp) versions: a gradient, reference gradients with a
// well-separated rank-3 target space, each rank's piece, and the single-process projection.

#include <cstdint>
#include <vector>

#include <ogpsa/ogpsa.hpp>

#include "support.hpp"

namespace ogpsa::test::sharded {

using ogpsa::family;
using ogpsa::sharding;
namespace t = ogpsa::test;

constexpr Eigen::Index rows = 24, cols = 20;

/// Reference gradients with a dominant 3-dimensional target space for family `f` (flat: three
/// dominant matrices; left: a column space; right: a row space), plus a little noise, so that a
/// rank-3 estimate is well separated and fp32 rounding moves it by ~eps only.
inline std::vector<t::matrix<float>> references(family f) {
  const t::matrix<double> q = t::random_orthonormal<double>(f == family::right ? cols : rows, 3, 11);
  const t::matrix<double> flat_parts = t::random_matrix<double>(rows * cols, 3, 12);
  std::vector<t::matrix<float>> out;
  for (std::uint32_t i = 0; i < 4; ++i) {
    t::matrix<double> r = 0.01 * t::random_matrix<double>(rows, cols, 20 + i);
    if (f == family::left) r += 5 * q * t::random_matrix<double>(3, cols, 30 + i);
    if (f == family::right) r += 5 * t::random_matrix<double>(rows, 3, 30 + i) * q.transpose();
    if (f == family::flat) r += (flat_parts * t::random_matrix<double>(3, 1, 30 + i)).reshaped(rows, cols);
    out.push_back(r.cast<float>());
  }
  return out;
}

/// This rank's rows or columns of m: an even split, the last ranks taking one fewer when uneven.
template <class T>
t::matrix<T> piece(const t::matrix<T>& m, sharding s, int rank, int ranks) {
  const Eigen::Index n = s == sharding::rows ? m.rows() : m.cols();
  const Eigen::Index first = n * rank / ranks, count = n * (rank + 1) / ranks - first;
  return s == sharding::rows ? t::matrix<T>(m.middleRows(first, count)) : t::matrix<T>(m.middleCols(first, count));
}

template <class Estimator, class Reducer>
using projector = ogpsa::projector<Estimator, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<float>, Reducer>;

/// The single-process projection of g.
template <class Estimator>
t::matrix<float> single_process(Estimator e, family f, t::matrix<float> g) {
  projector<Estimator, ogpsa::local_reducer> p(e);
  const auto id = p.add_block("w", ogpsa::view(g), f);
  p.begin_reference_pass();
  for (const auto& r : references(f)) p.feed(id, ogpsa::view(r));
  p.finish_reference_pass();
  p.project();
  return g;
}

inline t::matrix<float> gradient() { return t::random_matrix<float>(rows, cols, 5); }

}  // namespace ogpsa::test::sharded
