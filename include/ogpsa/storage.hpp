#pragma once
/// \file
/// Where a projector's data lives and in which element types.

#include "ogpsa/element.hpp"
#include "ogpsa/memory_space.hpp"

namespace ogpsa {

/// Element types and memory space of a projector: the gradients it projects (`Gradient`), the
/// bases it stores (`Basis`, by default the gradient's accumulator: float for float, double for
/// double) and the memory space both live in, which selects the backend.
///
/// Dot products accumulate in the wider of the two accumulators, so `storage<float, double>`
/// is the fp64-accumulation option for fp32 gradients.
template <element Gradient = float, element Basis = working_t<Gradient>,
          memory_space Space = host_memory_tag>
struct storage {
  using gradient = Gradient;
  using basis = Basis;
  using memory_space = Space;
};

}  // namespace ogpsa
