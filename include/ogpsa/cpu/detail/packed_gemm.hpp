#pragma once
/// \file
/// The two products of a matrix-side projection, for a tile X (m x t, column-major) of a target and
/// a tall basis U (m x k): the coefficients C = U^T X and the update X <- X diag(s) - U R.
///
/// Eigen's GEMM packs both operands on every call: the coefficients copied each tile of X once
/// more, and every tile packed U again. Here U is packed once per team member and task, in the
/// order each product reads, and X is read where it lies:
///
/// - coefficients: outer products along X's rows. A row of U (k values, in packets) times each of
///   a few columns' entry in that row (broadcast) accumulates into C's columns held in registers;
/// - update: X's rows in packets, R's entries broadcast; each entry of X is loaded, scaled,
///   updated by all k directions in registers, and stored once.
///
/// Loads are unaligned (as fast as aligned ones on aligned data): Eigen may be built without
/// alignment. Both walk the rows in blocks whose share of packed U stays in the L2 cache. Register blocks
/// are sized from Eigen's packet width and register count for the build's target (AVX-512, AVX2,
/// SSE, NEON, or scalar code), which a fixed-width block could not do. Every sum runs in an order
/// fixed by the shapes: results do not depend on threads or on the data's alignment.

#include <algorithm>
#include <cstddef>
#include <vector>

#include <Eigen/Core>

#include "ogpsa/config.hpp"
#include "ogpsa/cpu/detail/compile_time.hpp"
#include "ogpsa/cpu/detail/gemm.hpp"
#include "ogpsa/detail/convert.hpp"

namespace ogpsa::cpu::detail {

/// Register blocking of the kernels for work type `A`.
template <class A>
struct packed_shape {
  using packet = typename Eigen::internal::packet_traits<A>::type;
  static constexpr int lanes = Eigen::internal::unpacket_traits<packet>::size;
  static constexpr int registers = EIGEN_ARCH_DEFAULT_NUMBER_OF_REGISTERS;
  /// Packets of a row of U per coefficient block: the k directions are taken this many at a time.
  static constexpr int row_packets = registers >= 32 ? 4 : 2;
  /// Columns per block of `packets` accumulator rows, leaving registers for U and a broadcast.
  static constexpr int columns_for(int packets) {
    return std::clamp((registers - packets - 2) / packets, 1, 12);
  }
  static constexpr int coefficient_columns = columns_for(row_packets);
  /// Rows of X per update block (two packets), and its columns.
  static constexpr int panel_rows = 2 * lanes;
  static constexpr int update_columns = columns_for(2);
};

/// Bytes of packed U that a block of rows may take: a quarter of a typical 2 MiB L2 cache.
inline constexpr index_t packed_block_bytes = index_t{512} << 10;

/// Rows per block when each row takes `row_values` packed values: a multiple of `granule`, at least one.
template <class A>
index_t rows_per_block(index_t row_values, index_t granule, index_t block_bytes) {
  const index_t rows = block_bytes / std::max<index_t>(1, row_values * static_cast<index_t>(sizeof(A)));
  return std::max(granule, rows / granule * granule);
}

/// A basis U (m x k) packed for the kernels: by rows (U^T, each row padded to whole packets) for
/// the coefficients, or in panels of `panel_rows` rows (each panel k x panel_rows, the last padded
/// with zeros) for the update. Holds one packing of one task's basis at a time.
template <class A>
class packed_basis {
  using shape = packed_shape<A>;

 public:
  enum class packing { none, rows, panels };

  /// Packs the column-major `u` (m x k, leading dimension ld) in `wanted` unless this pack already
  /// holds task `task` in that packing (since the last `forget`).
  template <class Basis>
  void pack(packing wanted, std::size_t task, const Basis* u, index_t m, index_t k, index_t ld) {
    if (packing_ == wanted && task_ == task) return;
    m_ = m;
    k_ = k;
    stride_ = (k + shape::lanes - 1) / shape::lanes * shape::lanes;
    if (wanted == packing::rows)
      pack_rows(u, ld);
    else
      pack_panels(u, ld);
    packing_ = wanted;
    task_ = task;
  }

  /// Drops the record of what is packed: bases may change between calls.
  void forget() { packing_ = packing::none; }

  /// Values a basis of m x k takes packed in panels.
  static index_t panel_values(index_t m, index_t k) {
    constexpr index_t h = shape::panel_rows;
    return (m + h - 1) / h * k * h;
  }

  /// Room for `values` packed values, so that packing up to that many allocates nothing.
  void reserve(index_t values) { values_.reserve(static_cast<std::size_t>(values)); }

  index_t rows() const { return m_; }
  index_t directions() const { return k_; }
  /// Values per packed row of U^T: k rounded up to whole packets.
  index_t row_stride() const { return stride_; }
  const A* data() const { return values_.data(); }

 private:
  template <class Basis>
  void pack_rows(const Basis* u, index_t ld) {
    values_.resize(static_cast<std::size_t>(m_ * stride_));
    A* out = values_.data();
    constexpr index_t rows_at_once = 64;  // a cache-friendly transpose: 64 rows of every column
    for (index_t first = 0; first < m_; first += rows_at_once) {
      const index_t end = std::min(m_, first + rows_at_once);
      for (index_t p = 0; p < k_; ++p)
        for (index_t i = first; i < end; ++i) out[i * stride_ + p] = ogpsa::detail::widen<A>(u[p * ld + i]);
      for (index_t i = first; i < end; ++i) std::fill(out + i * stride_ + k_, out + (i + 1) * stride_, A(0));
    }
  }

  template <class Basis>
  void pack_panels(const Basis* u, index_t ld) {
    constexpr index_t h = shape::panel_rows;
    const index_t panels = (m_ + h - 1) / h;
    values_.resize(static_cast<std::size_t>(panel_values(m_, k_)));
    for (index_t panel = 0; panel < panels; ++panel) {
      const index_t first = panel * h, rows = std::min(h, m_ - first);
      A* out = values_.data() + panel * k_ * h;
      for (index_t p = 0; p < k_; ++p) {
        for (index_t i = 0; i < rows; ++i) out[p * h + i] = ogpsa::detail::widen<A>(u[p * ld + first + i]);
        std::fill(out + p * h + rows, out + (p + 1) * h, A(0));  // the last panel's rows past m
      }
    }
  }

  aligned_vector<A> values_;
  packing packing_ = packing::none;
  std::size_t task_ = 0;
  index_t m_ = 0, k_ = 0, stride_ = 0;
};

namespace packed_kernels {

template <class A>
using packet_of = typename packed_shape<A>::packet;

/// acc (V packets x N columns, column b at acc + b * ld_acc) += U^T rows [0, rows) x X's N columns.
template <class A, int V, int N>
void coefficient_block(const A* ut, index_t ut_stride, const A* x, index_t ldx, index_t rows, A* acc,
                       index_t ld_acc) {
  using namespace Eigen::internal;
  using P = packet_of<A>;
  constexpr int L = packed_shape<A>::lanes;
  P sum[V][N];
  unroll<N>([&](auto b) { unroll<V>([&](auto v) { sum[v][b] = ploadu<P>(acc + b * ld_acc + v * L); }); });
  for (index_t i = 0; i < rows; ++i) {
    P u[V];
    unroll<V>([&](auto v) { u[v] = ploadu<P>(ut + i * ut_stride + v * L); });
    unroll<N>([&](auto b) {
      const P xb = pset1<P>(x[b * ldx + i]);
      unroll<V>([&](auto v) { sum[v][b] = pmadd(u[v], xb, sum[v][b]); });
    });
  }
  unroll<N>([&](auto b) { unroll<V>([&](auto v) { pstoreu(acc + b * ld_acc + v * L, sum[v][b]); }); });
}

/// X (panel_rows x N, column b at x + b * ldx) <- X diag(s) + U_panel (k x panel_rows packed) R',
/// with R' = -R packed as k rows of N.
template <class A, int N>
void update_block(A* x, index_t ldx, const A* panel, const A* negated_r, index_t k, const A* s) {
  using namespace Eigen::internal;
  using P = packet_of<A>;
  constexpr int L = packed_shape<A>::lanes;
  P sum[2][N];
  unroll<N>([&](auto b) {
    const P scale = pset1<P>(s[b]);
    unroll<2>([&](auto v) { sum[v][b] = pmul(ploadu<P>(x + b * ldx + v * L), scale); });
  });
  for (index_t p = 0; p < k; ++p) {
    const P u0 = ploadu<P>(panel + p * 2 * L), u1 = ploadu<P>(panel + p * 2 * L + L);
    unroll<N>([&](auto b) {
      const P r = pset1<P>(negated_r[p * N + b]);
      sum[0][b] = pmadd(u0, r, sum[0][b]);
      sum[1][b] = pmadd(u1, r, sum[1][b]);
    });
  }
  unroll<N>([&](auto b) { unroll<2>([&](auto v) { pstoreu(x + b * ldx + v * L, sum[v][b]); }); });
}

}  // namespace packed_kernels

/// Scratch space of one team member for the kernels.
template <class A>
struct packed_scratch {
  aligned_vector<A> accumulators;  ///< C's columns padded to whole packets, summed over row blocks
  aligned_vector<A> negated;       ///< -R, packed per block of columns
  aligned_vector<A> edge;          ///< the last, partial panel of rows of X

  /// Room for `packed_update` on k directions and t columns with k t <= `negated_values`, so that it
  /// allocates nothing.
  void reserve_update(index_t negated_values) {
    negated.reserve(static_cast<std::size_t>(negated_values));
    edge.reserve(static_cast<std::size_t>(packed_shape<A>::panel_rows * packed_shape<A>::update_columns));
  }
};

/// C (k x t, column j at c + j * ldc) = U^T X for X (m x t, column j at x + j * ldx); `u` packed by rows.
template <class A>
void packed_coefficients(const packed_basis<A>& u, const A* x, index_t ldx, index_t t, A* c, index_t ldc,
                         packed_scratch<A>& scratch, index_t block_bytes = packed_block_bytes) {
  using shape = packed_shape<A>;
  const index_t m = u.rows(), k = u.directions(), stride = u.row_stride();
  scratch.accumulators.assign(static_cast<std::size_t>(stride * t), A(0));
  A* acc = scratch.accumulators.data();
  const index_t block = rows_per_block<A>(stride, 1, block_bytes);
  constexpr index_t width = shape::coefficient_columns, directions = shape::row_packets * shape::lanes;
  for (index_t first = 0; first < m; first += block) {
    const index_t rows = std::min(block, m - first);
    // A block of columns stays in cache while every block of directions passes over it.
    for (index_t j = 0; j < t; j += width) {
      with_constant<width>(std::min(width, t - j), [&](auto n) {
        for (index_t p = 0; p < stride; p += directions) {
          const index_t packets = std::min<index_t>(shape::row_packets, (stride - p) / shape::lanes);
          with_constant<shape::row_packets>(packets, [&](auto v) {
            packed_kernels::coefficient_block<A, v, n>(u.data() + first * stride + p, stride,
                                                       x + j * ldx + first, ldx, rows, acc + j * stride + p,
                                                       stride);
          });
        }
      });
    }
  }
  for (index_t j = 0; j < t; ++j) std::copy_n(acc + j * stride, k, c + j * ldc);
}

/// X <- X diag(s) - U R for X (m x t, column j at x + j * ldx) and R (k x t, column j at r + j * ldr);
/// `u` packed in panels.
template <class A>
void packed_update(const packed_basis<A>& u, A* x, index_t ldx, index_t t, const A* r, index_t ldr,
                   const A* s, packed_scratch<A>& scratch, index_t block_bytes = packed_block_bytes) {
  using shape = packed_shape<A>;
  constexpr index_t h = shape::panel_rows, width = shape::update_columns;
  const index_t m = u.rows(), k = u.directions();
  // -R, each block of `width` columns stored as k rows of its width.
  scratch.negated.resize(static_cast<std::size_t>(k * t));
  for (index_t j = 0; j < t; j += width) {
    const index_t n = std::min(width, t - j);
    for (index_t p = 0; p < k; ++p)
      for (index_t b = 0; b < n; ++b)
        scratch.negated[static_cast<std::size_t>(j * k + p * n + b)] = -r[(j + b) * ldr + p];
  }
  const index_t block = rows_per_block<A>(k, h, block_bytes);
  for (index_t first = 0; first < m; first += block) {
    const index_t end = std::min(m, first + block);
    for (index_t j = 0; j < t; j += width) {
      with_constant<width>(std::min(width, t - j), [&](auto n) {
        const A* negated = scratch.negated.data() + j * k;
        for (index_t i = first; i < end; i += h) {
          const A* panel = u.data() + i * k;
          if (i + h <= m) {
            packed_kernels::update_block<A, n>(x + j * ldx + i, ldx, panel, negated, k, s + j);
          } else {  // the last rows: through a buffer of whole packets
            scratch.edge.assign(static_cast<std::size_t>(h * n), A(0));
            for (int b = 0; b < n; ++b)
              std::copy(x + (j + b) * ldx + i, x + (j + b) * ldx + m, scratch.edge.data() + b * h);
            packed_kernels::update_block<A, n>(scratch.edge.data(), h, panel, negated, k, s + j);
            for (int b = 0; b < n; ++b)
              std::copy_n(scratch.edge.data() + b * h, m - i, x + (j + b) * ldx + i);
          }
        }
      });
    }
  }
}

}  // namespace ogpsa::cpu::detail
