#pragma once
/// \file
/// A projector's saved state: plain aggregates on the host, so a checkpoint is a copy of them.

#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "ogpsa/config.hpp"
#include "ogpsa/family.hpp"

namespace ogpsa {

/// One block: its registration (name, family, extents) and, once estimated, its subspace.
template <class Basis>
struct block_state {
  std::string name;
  family kind = family::flat;
  std::vector<index_t> extents;
  bool has_subspace = false;
  Eigen::Matrix<Basis, Eigen::Dynamic, Eigen::Dynamic> basis;  ///< dimension x rank
  std::vector<double> strengths;
  double captured_energy = 0;
  index_t dropped = 0;
};

/// The whole projector: step counters and every block, in registration order.
template <class Basis>
struct projector_state {
  std::uint64_t steps = 0;
  std::uint64_t steps_since_refresh = 0;
  std::uint64_t refreshes = 0;
  std::vector<block_state<Basis>> blocks;
};

}  // namespace ogpsa
