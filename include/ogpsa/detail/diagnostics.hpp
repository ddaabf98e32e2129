#pragma once
/// \file
/// What a projection callback is told, from what the backend measured: the squared norms of
/// `projection_stats` as the norms and cosines of `projection_info` (see `ogpsa/callbacks.hpp`).

#include <cmath>
#include <cstddef>
#include <string_view>

#include "ogpsa/backend.hpp"
#include "ogpsa/callbacks.hpp"
#include "ogpsa/config.hpp"
#include "ogpsa/family.hpp"

namespace ogpsa::detail {

/// One block's projection as norms and cosines (0 where the norm they divide by is 0).
inline projection_info describe_projection(std::string_view block, std::size_t index, family kind,
                                           index_t rank, const projection_stats& st) {
  const double norm = std::sqrt(st.gradient_sq), after = std::sqrt(st.projected_sq);
  return projection_info{block,
                         index,
                         kind,
                         rank,
                         norm,
                         after,
                         norm > 0 ? std::sqrt(st.removed_sq) / norm : 0.0,
                         norm > 0 ? std::sqrt(st.coefficient_sq) / norm : 0.0,
                         after > 0 ? std::sqrt(st.remaining_coefficient_sq) / after : 0.0,
                         st.scale};
}

}  // namespace ogpsa::detail
