#pragma once
/// \file
/// The two kernels of a one-column projection (a flat block, or any target with one column):
/// all k dot products of a row range in one pass over the gradient, and the update of a row range
/// in one pass (with diagnostics, measuring what it wrote chunk by chunk). Together they move the minimal traffic, (3 + 2k) elements per row: g and U read
/// once for the coefficients; U and g read and g written once for the update.
///
/// Rows go in chunks; within a chunk, up to `column_group` basis columns stream together with the
/// gradient, so that memory sees a few long sequential streams. With more columns, the chunk's
/// gradient (widened to the accumulator type) stays in L1 for the next groups. A dot product keeps
/// `lanes` independent partial sums in the accumulator type (one SIMD block, lanes.hpp; no
/// -ffast-math needed) and adds each chunk's sum to a double. Every addition's order is fixed by the row range alone: results do not depend on how
/// rows are split across threads, as long as ranges start at multiples of `chunk_rows`.

#include <algorithm>
#include <type_traits>

#include "ogpsa/config.hpp"
#include "ogpsa/cpu/detail/compile_time.hpp"
#include "ogpsa/cpu/detail/lanes.hpp"
#include "ogpsa/detail/convert.hpp"

namespace ogpsa::cpu::detail {

/// Rows per chunk: 8 KiB of float gradient, kept in L1 while further column groups stream past.
inline constexpr index_t chunk_rows = 2048;
/// Basis columns streamed together, so that their accumulators fit in registers.
inline constexpr index_t column_group = 8;

/// sums[j] += sum_{i < n} u[j * ld + i] * x[i] for j < Columns, in `A`. With `Keep`, also stores
/// x widened to `A` in `kept`, for the next column groups. Two blocks of partial sums per column
/// (alternate blocks of rows) keep two multiply-add chains in flight even for one column.
template <index_t Columns, bool Keep, class A, class X, class B>
void chunk_dots(const X* x, index_t n, const B* u, index_t ld, double* sums, A* kept) {
  block<A> acc[2][Columns] = {};
  auto add_block = [&](index_t i, block<A>* partial) {
    block<A> v, w;
    load<A>(v, x + i);
    if constexpr (Keep) store<A>(kept + i, v);
    for (index_t j = 0; j < Columns; ++j) {
      load<A>(w, u + j * ld + i);
      partial[j] += w * v;
    }
  };
  index_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    add_block(i, acc[0]);
    add_block(i + lanes, acc[1]);
  }
  if (i + lanes <= n) {
    add_block(i, acc[0]);
    i += lanes;
  }
  for (; i < n; ++i) {
    const A v = ogpsa::detail::widen<A>(x[i]);
    if constexpr (Keep) kept[i] = v;
    for (index_t j = 0; j < Columns; ++j) acc[1][j][i % lanes] += ogpsa::detail::widen<A>(u[j * ld + i]) * v;
  }
  for (index_t j = 0; j < Columns; ++j)
    sums[j] += static_cast<double>(lane_sum<A>(acc[0][j]) + lane_sum<A>(acc[1][j]));
}

/// out[i] = s * in[i] - sum_{j < Columns} u[j * ld + i] * r[j] for i < n, computed in `A` and
/// rounded to out's type (`in` and `out` may be the same array). Two blocks at a time keep two
/// multiply-add chains in flight.
template <index_t Columns, class A, class In, class Out, class B>
void chunk_update(const In* in, A s, Out* out, index_t n, const B* u, index_t ld, const A* r) {
  block<A> scale, removed[Columns];
  splat<A>(scale, s);
  for (index_t j = 0; j < Columns; ++j) splat<A>(removed[j], r[j]);
  index_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    block<A> v0, v1, w0, w1;
    load<A>(v0, in + i);
    load<A>(v1, in + i + lanes);
    v0 = scale * v0;
    v1 = scale * v1;
    for (index_t j = 0; j < Columns; ++j) {
      load<A>(w0, u + j * ld + i);
      load<A>(w1, u + j * ld + i + lanes);
      v0 -= w0 * removed[j];
      v1 -= w1 * removed[j];
    }
    store<A>(out + i, v0);
    store<A>(out + i + lanes, v1);
  }
  for (; i < n; ++i) {
    A v = s * ogpsa::detail::widen<A>(in[i]);
    for (index_t j = 0; j < Columns; ++j) v -= ogpsa::detail::widen<A>(u[j * ld + i]) * r[j];
    out[i] = ogpsa::detail::narrow<Out>(v);
  }
}

/// For rows [begin, end) of a one-column target g and its basis U (k columns, column stride ld):
/// sums[j] += U(:, j)^T g for j < k and, when `squares`, sums[k] += g^T g. Products accumulate in
/// `A` within a chunk and in double across chunks.
template <class A, class G, class B>
void accumulate_dots(const G* g, const B* u, index_t ld, index_t k, index_t begin, index_t end,
                     double* sums, bool squares) {
  A kept[chunk_rows];  // g widened, for column groups after the first
  for (index_t row = begin; row < end; row += chunk_rows) {
    const index_t n = std::min(chunk_rows, end - row);
    const B* chunk = u + row;
    with_constant<column_group>(std::min(column_group, k), [&](auto columns) {
      if (k > column_group) chunk_dots<decltype(columns)::value, true>(g + row, n, chunk, ld, sums, kept);
      else chunk_dots<decltype(columns)::value, false>(g + row, n, chunk, ld, sums, kept);
    });
    for (index_t j = column_group; j < k; j += column_group)
      with_constant<column_group>(std::min(column_group, k - j), [&](auto columns) {
        chunk_dots<decltype(columns)::value, false>(kept, n, chunk + j * ld, ld, sums + j, kept);
      });
    if (squares) chunk_dots<1, false>(g + row, n, g + row, 0, sums + k, kept);
  }
}

/// For rows [begin, end): g <- s g - U r, computed in `A` and rounded once to the gradient's type.
template <class A, class G, class B>
void update_rows(G* g, const B* u, index_t ld, index_t k, const A* r, A s, index_t begin,
                 index_t end) {
  A partial[chunk_rows];  // s g - (U r so far), between column groups
  for (index_t row = begin; row < end; row += chunk_rows) {
    const index_t n = std::min(chunk_rows, end - row);
    G* x = g + row;
    const B* chunk = u + row;
    if (k <= column_group) {
      with_constant<column_group>(
          k, [&](auto columns) { chunk_update<decltype(columns)::value>(x, s, x, n, chunk, ld, r); });
      continue;
    }
    chunk_update<column_group>(x, s, partial, n, chunk, ld, r);
    index_t j = column_group;
    for (; j + column_group < k; j += column_group)
      chunk_update<column_group>(partial, A(1), partial, n, chunk + j * ld, ld, r + j);
    with_constant<column_group>(k - j, [&](auto columns) {
      chunk_update<decltype(columns)::value>(partial, A(1), x, n, chunk + j * ld, ld, r + j);
    });
  }
}

/// `update_rows`, measuring what it writes: for rows [begin, end), g <- s g - U r, then
/// sums[j] += U(:, j)^T g for j < k and sums[k] += g^T g over the values written, chunk by chunk
/// while the chunk is in cache. Writes the same values as `update_rows`.
template <class A, class G, class B>
void update_and_measure_rows(G* g, const B* u, index_t ld, index_t k, const A* r, A s, index_t begin,
                             index_t end, double* sums) {
  for (index_t row = begin; row < end; row += chunk_rows) {
    const index_t last = std::min(end, row + chunk_rows);
    update_rows<A>(g, u, ld, k, r, s, row, last);
    accumulate_dots<A>(g, u, ld, k, row, last, sums, true);
  }
}

}  // namespace ogpsa::cpu::detail
