#pragma once
/// \file
/// Optional observation hooks, detected at compile time: pass any objects to
/// `projector::project` or `projector::finish_reference_pass`, and whichever of these member
/// functions an object has is called. A hook nobody asked for costs nothing: the measures behind
/// `projection_info` are taken only when some callback has `on_projection` (see there for what
/// they cost).
///
///     void on_refresh(const ogpsa::refresh_info&);        // a reference pass was committed
///     void on_degenerate(const ogpsa::degenerate_info&);  // a block's estimator dropped directions
///     void on_projection(const ogpsa::projection_info&);  // one block was projected
///     void on_non_finite(const ogpsa::non_finite_info&);  // a gradient held NaN/Inf (left as is)

#include <cstddef>
#include <string_view>

#include "ogpsa/config.hpp"
#include "ogpsa/family.hpp"

namespace ogpsa {

struct refresh_info {
  std::size_t step;        ///< optimizer steps taken before this refresh
  std::size_t refreshes;   ///< refreshes committed so far, this one included
  std::size_t blocks;      ///< blocks re-estimated
  index_t total_rank;      ///< sum of the new ranks
  index_t dropped;         ///< directions dropped as degenerate, over all blocks
};

struct degenerate_info {
  std::string_view block;
  std::size_t index;
  index_t kept;     ///< rank of the new basis
  index_t dropped;  ///< directions dropped (zero or parallel references, numerically zero singular values)
};

/// One block's projection, with g its target-space vectors before and g_after after it, U its
/// basis, r the coefficients the rule removed and s its scale (Frobenius norms over the block).
///
/// Measured, not derived: |g| and U^T g in the pass that reads g, |g_after| and U^T g_after over
/// the values written, in the pass that writes them. Each number has a small relative error (a few
/// units of the accumulator's rounding: float for float and 16-bit data, double for double), even
/// when g lies almost in the subspace and |g_after| is a tiny fraction of |g|. The exception is
/// what rounding itself leaves in the subspace: `cosine_after` is then measured to an absolute
/// error of about that rounding unit (relative error about |g_after| / |g| of its value), so a value
/// of that order means the projection was exact to rounding. A block whose target rows are split
/// across ranks reports the whole block's numbers on every rank; one split by target columns, its
/// rank's columns.
struct projection_info {
  std::string_view block;
  std::size_t index;
  family kind;
  index_t rank;
  double gradient_norm;     ///< |g|
  double projected_norm;    ///< |g_after|
  double removed_fraction;  ///< |(1 - s) g + U r| / |g|, what the rule removed (0 if g was not written)
  double cosine_before;     ///< |U^T g| / |g|, the cosine between g and the subspace
  double cosine_after;      ///< |U^T g_after| / |g_after|, the same after projection
  double scale;             ///< s, the factor the whole gradient was scaled by (threshold mode)
};

struct non_finite_info {
  std::string_view block;
  std::size_t index;
  std::size_t step;
};

namespace detail {

template <class C>
concept has_on_refresh = requires(C& c, const refresh_info& i) { c.on_refresh(i); };
template <class C>
concept has_on_degenerate = requires(C& c, const degenerate_info& i) { c.on_degenerate(i); };
template <class C>
concept has_on_projection = requires(C& c, const projection_info& i) { c.on_projection(i); };
template <class C>
concept has_on_non_finite = requires(C& c, const non_finite_info& i) { c.on_non_finite(i); };

template <class C>
concept callback = has_on_refresh<C> || has_on_degenerate<C> || has_on_projection<C> ||
                   has_on_non_finite<C>;

template <class... C>
void check_callbacks() {
  static_assert((callback<C> && ...),
                "an ogpsa callback needs at least one of on_refresh, on_degenerate, on_projection "
                "or on_non_finite, taking the matching ogpsa::*_info by const reference");
}

template <class... C>
void notify_refresh(const refresh_info& i, C&... cs) {
  (
      [&] {
        if constexpr (has_on_refresh<C>) cs.on_refresh(i);
      }(),
      ...);
}
template <class... C>
void notify_degenerate(const degenerate_info& i, C&... cs) {
  (
      [&] {
        if constexpr (has_on_degenerate<C>) cs.on_degenerate(i);
      }(),
      ...);
}
template <class... C>
void notify_projection(const projection_info& i, C&... cs) {
  (
      [&] {
        if constexpr (has_on_projection<C>) cs.on_projection(i);
      }(),
      ...);
}
template <class... C>
void notify_non_finite(const non_finite_info& i, C&... cs) {
  (
      [&] {
        if constexpr (has_on_non_finite<C>) cs.on_non_finite(i);
      }(),
      ...);
}

template <class... C>
inline constexpr bool wants_projection_info = (has_on_projection<C> || ...);

/// Whether some callback reads a block's flags (`on_non_finite` needs `finite`).
template <class... C>
inline constexpr bool wants_block_flags = ((has_on_projection<C> || has_on_non_finite<C>) || ...);

}  // namespace detail
}  // namespace ogpsa
