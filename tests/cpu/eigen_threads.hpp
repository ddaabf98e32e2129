#pragma once
// A scoped setting of Eigen's own thread count, for tests of thread independence.

#include <Eigen/Core>

namespace ogpsa::test {

/// Eigen's own threads for its products while in scope: more than the cores of a test machine, so
/// that a product left to Eigen's product API would be split (and rounded) differently from a
/// serial one.
struct eigen_threads {
  int before = Eigen::nbThreads();
  explicit eigen_threads(int n) { Eigen::setNbThreads(n); }
  ~eigen_threads() { Eigen::setNbThreads(before); }
  eigen_threads(const eigen_threads&) = delete;
  eigen_threads& operator=(const eigen_threads&) = delete;
};

}  // namespace ogpsa::test
