#pragma once
/// \file
/// Products over matrices seen side by side ("stacked" columns), one pass over their rows, split
/// across a team of threads: the estimators' Gram matrices [p_1 p_2 ...]^T b and products
/// [p_1 p_2 ...] x on tall data.
///
/// Results do not depend on the number of threads: rows are cut into panels by the shapes alone;
/// a product's panels are independent, and a Gram matrix is summed per fixed run of panels
/// ("chunk") and then over the chunks in order. Every product of panels is `gemm_serial`: Eigen's
/// product API would split a large one across threads of its own (OpenMP's default number, even
/// in a team of one), with a cache blocking, hence a rounding, that depends on their number.

#include <algorithm>
#include <array>
#include <span>
#include <vector>

#include <Eigen/Core>

#include "ogpsa/backend.hpp"
#include "ogpsa/cpu/detail/eigen_map.hpp"
#include "ogpsa/cpu/detail/gemm.hpp"
#include "ogpsa/cpu/detail/parallel.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/memory_space.hpp"

namespace ogpsa::cpu::detail {

/// Read-only column-major columns in host memory: a backend matrix's, or a caller's.
template <class T>
using columns_ref = ogpsa::detail::matrix_ref<const T, host_memory_tag>;

template <class T>
columns_ref<T> columns_of(const dense<T>& m) {
  return {m.data(), m.rows(), m.cols(), 1, m.rows()};
}

template <class T>
std::vector<columns_ref<T>> columns_of(std::span<const dense<T>> parts) {
  std::vector<columns_ref<T>> refs;
  refs.reserve(parts.size());
  for (const auto& p : parts) refs.push_back(columns_of<T>(p));
  return refs;
}

/// Rows [row, row + n) of `p` as an Eigen map (of nothing for no columns, whose data may be null).
template <class T>
auto rows_of(const columns_ref<T>& p, index_t row, index_t n) {
  return map_of<dense<T>, const T>(p.cols > 0 ? p.data + row : p.data, n, p.cols,
                                   Eigen::OuterStride<>(p.col_stride));
}

template <class T>
index_t total_cols(std::span<const columns_ref<T>> parts) {
  index_t cols = 0;
  for (const auto& p : parts) cols += p.cols;
  return cols;
}

/// Rows per panel when matrices are widened to double (or gathered side by side) for one pass over
/// their rows: about 2 MiB of doubles, so that a panel stays in cache however wide the data.
inline index_t widened_panel_rows(index_t cols) {
  return std::max<index_t>(64, (index_t{1} << 18) / std::max<index_t>(cols, 1));
}

/// Rows [row, row + panel.rows()) of `parts` side by side, widened to double, into `panel`.
template <class T>
void gather_rows(std::span<const columns_ref<T>> parts, index_t row, Eigen::Ref<host_matrix> panel) {
  index_t at = 0;
  for (const auto& p : parts) {
    panel.middleCols(at, p.cols) = rows_of<T>(p, row, panel.rows()).template cast<double>();
    at += p.cols;
  }
}

/// `rows` rows cut into panels of `step` rows, the panels grouped into `count` runs of consecutive
/// panels ("chunks") of nearly equal length. Depends on the shapes only.
struct row_chunks {
  index_t rows;
  index_t step;
  index_t count;

  row_chunks(index_t rows_, index_t step_, index_t most)
      : rows(rows_), step(step_), count(std::clamp<index_t>(panels(), 1, std::max<index_t>(most, 1))) {}

  index_t panels() const { return (rows + step - 1) / step; }

  /// The first row of chunk c (c = count gives rows).
  index_t begin(index_t c) const { return std::min(rows, panels() * c / count * step); }
};

/// The most members of a team for `count` chunks on at most `threads` threads.
inline int chunk_team(int threads, index_t count) {
  return static_cast<int>(std::min<index_t>(std::max(threads, 1), count));
}

/// Runs `body(member, first, end)` once per member of a team of at most `team` (`chunk_team`), with
/// the member's contiguous run of chunks [first, end) out of [0, count). Buffers a body writes
/// through are set up per member before the team, so that the team allocates nothing.
template <class Body>
void for_chunk_runs(int team, index_t count, Body&& body) {
  run_team(team, [&](int member, int members) {
    body(member, count * member / members, count * (member + 1) / members);
  });
}

/// Runs `body(c)` for every chunk c in [0, count), spread over the team as `for_chunk_runs`.
template <class Body>
void for_each_chunk(int threads, index_t count, Body&& body) {
  for_chunk_runs(chunk_team(threads, count), count, [&](int, index_t first, index_t end) {
    for (index_t c = first; c < end; ++c) body(c);
  });
}

/// Most chunks of a Gram matrix: enough for any usual thread count, as long as the partial sums
/// (one cols x b_cols matrix per chunk) stay within about 16 MiB.
inline index_t gram_chunks(index_t cols, index_t b_cols) {
  constexpr index_t most = 64, budget = index_t{1} << 21;  // doubles
  return std::min(most, budget / std::max<index_t>(cols * b_cols, 1));
}

/// Thin products (a streaming sketch's update: a few columns times a few) are dominated by the
/// packing and panel copies of a GEMM; up to this many columns on each side, the row-tile kernels
/// below run instead, reading each row of the data once from cache.
inline constexpr index_t thin_columns = 16;
/// Rows per tile of the thin kernels: a tile of every column stays in the first-level cache.
inline constexpr index_t thin_tile_rows = 64;

/// The columns of `parts` one by one, each as its first element.
template <class T>
std::vector<const T*> column_starts(std::span<const columns_ref<T>> parts) {
  std::vector<const T*> starts;
  for (const auto& p : parts)
    for (index_t j = 0; j < p.cols; ++j) starts.push_back(p.data + j * p.col_stride);
  return starts;
}

/// g(j, i) += sum over rows [begin, end) of a_j b_i, in double, a cache-sized tile of rows at a
/// time: each product is added to one of eight running sums by row (the same ones whatever the
/// alignment of the data), and the eight are summed in order at the end.
template <class T>
void thin_gram(const std::vector<const T*>& a, const std::vector<const T*>& b, index_t begin, index_t end,
               host_matrix& g) {
  constexpr index_t sums_per_pair = 8, tile = 2048;  // tile: a multiple of sums_per_pair
  std::vector<std::array<double, sums_per_pair>> sums(a.size() * b.size(),
                                                      std::array<double, sums_per_pair>{});
  for (index_t t = begin; t < end; t += tile) {
    const index_t stop = std::min(end, t + tile);
    for (std::size_t j = 0; j < a.size(); ++j) {
      for (std::size_t i = 0; i < b.size(); ++i) {
        const T* x = a[j];
        const T* y = b[i];
        double* sum = sums[j * b.size() + i].data();
        index_t r = t;
        for (; r + sums_per_pair <= stop; r += sums_per_pair)
          for (index_t l = 0; l < sums_per_pair; ++l)
            sum[l] += static_cast<double>(x[r + l]) * static_cast<double>(y[r + l]);
        for (index_t l = 0; r < stop; ++r, ++l)
          sum[l] += static_cast<double>(x[r]) * static_cast<double>(y[r]);
      }
    }
  }
  for (std::size_t j = 0; j < a.size(); ++j)
    for (std::size_t i = 0; i < b.size(); ++i) {
      double total = 0;
      for (const double v : sums[j * b.size() + i]) total += v;
      g(static_cast<index_t>(j), static_cast<index_t>(i)) += total;
    }
}

/// acc[0, n) += sum_j a_j[r0, r0 + n) w[j]: one output column of a tile. A full tile is an
/// Eigen array of fixed length, so that its running sums are whole packets, unrolled.
template <class T>
void tile_column(T* acc, const std::vector<const T*>& a, index_t r0, const T* w, index_t n) {
  if (n == thin_tile_rows) {
    using full_tile = Eigen::Array<T, thin_tile_rows, 1>;
    full_tile sums = Eigen::Map<const full_tile>(acc);
    for (std::size_t j = 0; j < a.size(); ++j) sums += Eigen::Map<const full_tile>(a[j] + r0) * w[j];
    Eigen::Map<full_tile>{acc} = sums;
    return;
  }
  for (std::size_t j = 0; j < a.size(); ++j)
    for (index_t r = 0; r < n; ++r) acc[r] += a[j][r0 + r] * w[j];
}

/// Rows [begin, end) of out <- [a_1 a_2 ...] x (+ out), in T, a tile of rows at a time (the tile
/// is complete before it is stored, so `out` may be among the a_j).
template <class T>
void thin_product(const std::vector<const T*>& a, const dense<T>& x, index_t begin, index_t end,
                  dense<T>& out, bool accumulate) {
  alignas(64) T tile[thin_columns * thin_tile_rows];
  const index_t cols = out.cols(), ld = out.rows(), depth = x.rows();
  T* o = out.data();
  for (index_t r0 = begin; r0 < end; r0 += thin_tile_rows) {
    const index_t n = std::min(thin_tile_rows, end - r0);
    for (index_t i = 0; i < cols; ++i) {
      T* t = tile + i * thin_tile_rows;
      if (accumulate)
        std::copy_n(o + i * ld + r0, n, t);
      else
        std::fill_n(t, n, T(0));
      tile_column<T>(t, a, r0, x.data() + i * depth, n);
    }
    for (index_t i = 0; i < cols; ++i) std::copy_n(tile + i * thin_tile_rows, n, o + i * ld + r0);
  }
}

inline host_matrix sum_in_order(const std::vector<host_matrix>& partial, index_t rows, index_t cols) {
  host_matrix g = host_matrix::Zero(rows, cols);
  for (const host_matrix& p : partial) g += p;
  return g;
}

/// [p_1 p_2 ...]^T b, or the Gram matrix of [p_1 p_2 ...] when `b` is empty (exactly symmetric),
/// accumulated in double in one pass over the rows.
template <class T>
host_matrix stacked_gram(int threads, std::span<const columns_ref<T>> parts,
                         std::span<const columns_ref<T>> b) {
  const bool self = b.empty();
  const index_t cols = total_cols<T>(parts), b_cols = self ? cols : total_cols<T>(b);
  const index_t rows = parts.empty() ? (b.empty() ? 0 : b.front().rows) : parts.front().rows;
  const row_chunks chunks(rows, widened_panel_rows(cols + (self ? 0 : b_cols)), gram_chunks(cols, b_cols));
  std::vector<host_matrix> partial(static_cast<std::size_t>(chunks.count), host_matrix::Zero(cols, b_cols));
  if (!self && cols <= thin_columns && b_cols <= thin_columns) {
    const std::vector<const T*> a_starts = column_starts<T>(parts), b_starts = column_starts<T>(b);
    for_each_chunk(threads, chunks.count, [&](index_t c) {
      thin_gram<T>(a_starts, b_starts, chunks.begin(c), chunks.begin(c + 1),
                   partial[static_cast<std::size_t>(c)]);
    });
    return sum_in_order(partial, cols, b_cols);
  }
  // Each member's panels, allocated before the team (a resize of one that fails would leave it
  // dangling); Eigen's kernels may still allocate packing space in the team, but only the partial
  // sums here would see a failure.
  const int team = chunk_team(threads, chunks.count);
  const index_t step = std::min(chunks.step, rows);
  std::vector<host_matrix> pa(static_cast<std::size_t>(team), host_matrix(step, cols));
  std::vector<host_matrix> pb(self ? 0 : static_cast<std::size_t>(team), host_matrix(step, b_cols));
  for_chunk_runs(team, chunks.count, [&](int member, index_t first, index_t end) {
    const auto m = static_cast<std::size_t>(member);
    for (index_t c = first; c < end; ++c) {
      host_matrix& g = partial[static_cast<std::size_t>(c)];
      for (index_t r = chunks.begin(c); r < chunks.begin(c + 1); r += chunks.step) {
        auto a = pa[m].topRows(std::min(chunks.step, rows - r));
        gather_rows<T>(parts, r, a);
        if (self) {
          g.selfadjointView<Eigen::Lower>().rankUpdate(a.transpose());
          continue;
        }
        auto other = pb[m].topRows(a.rows());
        gather_rows<T>(b, r, other);
        gemm_serial(a.transpose(), other, g, 1.0);
      }
    }
  });
  host_matrix g = sum_in_order(partial, cols, b_cols);
  if (self) g.template triangularView<Eigen::StrictlyUpper>() = g.transpose();
  return g;
}

/// out <- [p_1 p_2 ...] x (accumulate: out += ...), panel by panel in T. `out` may be the first
/// part (the in-place product): each panel of it is read before it is written. Allocates before it
/// writes: a failure leaves `out` as it was.
template <class T>
void stacked_product(int threads, std::span<const columns_ref<T>> parts, const host_matrix& x, dense<T>& out,
                     bool accumulate) {
  const dense<T> xt = x.template cast<T>();
  const row_chunks panels(out.rows(), widened_panel_rows(xt.rows() + xt.cols()), index_t{1} << 40);
  if (xt.rows() <= thin_columns && xt.cols() <= thin_columns) {
    const std::vector<const T*> starts = column_starts<T>(parts);
    for_each_chunk(threads, panels.count, [&](index_t c) {
      thin_product<T>(starts, xt, panels.begin(c), panels.begin(c + 1), out, accumulate);
    });
    return;
  }
  // Every buffer of the team, before it: each part's blocking (for a full panel) and each member's
  // panel and packing space for them.
  const int team = chunk_team(threads, panels.count);
  const index_t step = std::min(panels.step, out.rows());
  std::vector<gemm_blocking<T>> blockings;
  index_t space = 0;
  for (const auto& p : parts) {
    blockings.emplace_back(step, xt.cols(), p.cols, Eigen::ColMajor);
    space = std::max<index_t>(space, blockings.back().space());
  }
  std::vector<dense<T>> panel(static_cast<std::size_t>(team), dense<T>(step, xt.cols()));
  std::vector<aligned_vector<T>> packing(static_cast<std::size_t>(team),
                                         aligned_vector<T>(static_cast<std::size_t>(space)));
  for_chunk_runs(team, panels.count, [&](int member, index_t first, index_t end) {
    const auto m = static_cast<std::size_t>(member);
    for (index_t c = first; c < end; ++c) {
      const index_t r = panels.begin(c), n = panels.begin(c + 1) - r;
      auto sum = panel[m].topRows(n);
      if (accumulate)
        sum = out.middleRows(r, n);
      else
        sum.setZero();
      index_t at = 0;
      for (std::size_t i = 0; i < parts.size(); ++i) {
        gemm_serial(rows_of<T>(parts[i], r, n), xt.middleRows(at, parts[i].cols), sum, T(1), blockings[i],
                    packing[m].data());
        at += parts[i].cols;
      }
      out.middleRows(r, n) = sum;
    }
  });
}

}  // namespace ogpsa::cpu::detail
