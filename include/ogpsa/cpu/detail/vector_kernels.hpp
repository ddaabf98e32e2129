#pragma once
/// \file
/// The two kernels of a one-column projection (a flat block, or any target with one column):
/// all k dot products of a row range in one pass over the gradient, and the update of a row range
/// in one pass. Together they move the minimal traffic, (3 + 2k) elements per row: g and U read
/// once for the coefficients; U and g read and g written once for the update.
///
/// Rows go in chunks that stay in L1 while up to `column_group` basis columns stream past. A dot
/// product keeps `lanes` independent partial sums in the accumulator type, which a compiler maps
/// to SIMD registers without reassociating anything (so no -ffast-math is needed), and adds each
/// chunk's sum to a double. Every addition's order is fixed by the row range alone: results do not
/// depend on how rows are split across threads, as long as ranges start at multiples of
/// `chunk_rows`.

#include <algorithm>
#include <type_traits>

#include "ogpsa/config.hpp"
#include "ogpsa/detail/convert.hpp"

namespace ogpsa::cpu::detail {

/// Independent partial sums per dot product: one AVX-512 register of floats, two AVX2 ones.
inline constexpr index_t lanes = 16;
/// Rows of the gradient kept in L1 (8 KiB of float) while basis columns stream past.
inline constexpr index_t chunk_rows = 2048;
/// Basis columns streamed together, so that their accumulators fit in registers.
inline constexpr index_t column_group = 8;

/// Calls `f(std::integral_constant<index_t, n>{})` for 1 <= n <= Max: kernels over a compile-time
/// number of columns keep their accumulators in registers.
template <index_t Max = column_group, class F>
void with_columns(index_t n, F&& f) {
  if constexpr (Max == 1) {
    f(std::integral_constant<index_t, 1>{});
  } else if (n == Max) {
    f(std::integral_constant<index_t, Max>{});
  } else {
    with_columns<Max - 1>(n, f);
  }
}

/// sums[j] += sum_{i < n} u[j * ld + i] * x[i], for j < Columns.
template <index_t Columns, class A, class B>
void chunk_dots(const A* x, index_t n, const B* u, index_t ld, double* sums) {
  A acc[Columns][lanes] = {};
  index_t i = 0;
  for (; i + lanes <= n; i += lanes)
    for (index_t j = 0; j < Columns; ++j)
      for (index_t l = 0; l < lanes; ++l)
        acc[j][l] += ogpsa::detail::widen<A>(u[j * ld + i + l]) * x[i + l];
  for (; i < n; ++i)
    for (index_t j = 0; j < Columns; ++j)
      acc[j][i % lanes] += ogpsa::detail::widen<A>(u[j * ld + i]) * x[i];
  for (index_t j = 0; j < Columns; ++j) {
    A sum = 0;
    for (index_t l = 0; l < lanes; ++l) sum += acc[j][l];
    sums[j] += static_cast<double>(sum);
  }
}

/// x[i] -= sum_{j < Columns} u[j * ld + i] * r[j], for i < n.
template <index_t Columns, class A, class B>
void chunk_update(A* x, index_t n, const B* u, index_t ld, const A* r) {
  index_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    A v[lanes];  // a local copy: the compiler need not fear that x aliases u
    for (index_t l = 0; l < lanes; ++l) v[l] = x[i + l];
    for (index_t j = 0; j < Columns; ++j)
      for (index_t l = 0; l < lanes; ++l) v[l] -= ogpsa::detail::widen<A>(u[j * ld + i + l]) * r[j];
    for (index_t l = 0; l < lanes; ++l) x[i + l] = v[l];
  }
  for (; i < n; ++i)
    for (index_t j = 0; j < Columns; ++j) x[i] -= ogpsa::detail::widen<A>(u[j * ld + i]) * r[j];
}

/// x[i] = s * g[i] in the accumulator type, for i < n.
template <class A, class G>
void load_chunk(const G* g, index_t n, A s, A* x) {
  index_t i = 0;
  for (; i + lanes <= n; i += lanes)
    for (index_t l = 0; l < lanes; ++l) x[i + l] = s * ogpsa::detail::widen<A>(g[i + l]);
  for (; i < n; ++i) x[i] = s * ogpsa::detail::widen<A>(g[i]);
}

/// g[i] = x[i] rounded to the gradient's type, for i < n.
template <class A, class G>
void store_chunk(const A* x, index_t n, G* g) {
  index_t i = 0;
  for (; i + lanes <= n; i += lanes)
    for (index_t l = 0; l < lanes; ++l) g[i + l] = ogpsa::detail::narrow<G>(x[i + l]);
  for (; i < n; ++i) g[i] = ogpsa::detail::narrow<G>(x[i]);
}

/// For rows [begin, end) of a one-column target g and its basis U (k columns, column stride ld):
/// sums[j] += U(:, j)^T g for j < k and, when `squares`, sums[k] += g^T g. Products accumulate in
/// `A` within a chunk and in double across chunks.
template <class A, class G, class B>
void accumulate_dots(const G* g, const B* u, index_t ld, index_t k, index_t begin, index_t end,
                     double* sums, bool squares) {
  A x[chunk_rows];
  for (index_t row = begin; row < end; row += chunk_rows) {
    const index_t n = std::min(chunk_rows, end - row);
    load_chunk(g + row, n, A(1), x);
    for (index_t j = 0; j < k; j += column_group)
      with_columns(std::min(column_group, k - j),
                   [&](auto columns) { chunk_dots<columns()>(x, n, u + j * ld + row, ld, sums + j); });
    if (squares) chunk_dots<1>(x, n, x, 0, sums + k);
  }
}

/// For rows [begin, end): g <- s g - U r, computed in `A` and rounded once to the gradient's type.
template <class A, class G, class B>
void update_rows(G* g, const B* u, index_t ld, index_t k, const A* r, A s, index_t begin,
                 index_t end) {
  A x[chunk_rows];
  for (index_t row = begin; row < end; row += chunk_rows) {
    const index_t n = std::min(chunk_rows, end - row);
    load_chunk(g + row, n, s, x);
    for (index_t j = 0; j < k; j += column_group)
      with_columns(std::min(column_group, k - j),
                   [&](auto columns) { chunk_update<columns()>(x, n, u + j * ld + row, ld, r + j); });
    store_chunk(x, n, g + row);
  }
}

}  // namespace ogpsa::cpu::detail
