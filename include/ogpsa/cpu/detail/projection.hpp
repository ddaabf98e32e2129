#pragma once
/// \file
/// Projection of many blocks in one call, split across threads by bytes.
///
/// Each block's target (a d x 1 flat gradient, or the m x n matrix of a matrix-side block) is cut
/// into tiles: row ranges of one-column targets, column ranges of the others. The projection runs
/// in two halves, each one team of threads with a barrier in the middle, so that a distributed
/// run can all-reduce every block's coefficients in one call between them:
///
/// - `coefficients`: each member takes consecutive tiles worth an equal share of the bytes read
///   and computes their part of C = U^T X (partial dot products of a row range, or the columns of
///   C that a column range owns); then each block's partial sums are added in tile order and
///   packed, with |X|^2 when diagnostics are on, into one buffer;
/// - `update`: each block's packed coefficients are checked for NaN/Inf and turned by the rule
///   into the coefficients to remove and a scale per column; then members take equal shares of
///   the bytes moved and write X <- X diag(s) - U R. With diagnostics, each tile is measured right
///   after it is written, while it is in cache: U^T X and |X|^2 of the values written (a flat
///   tile chunk by chunk, along with its update; a matrix tile by one more thin product), then
///   each block's partial sums are added in tile order and packed like the coefficients, which a
///   distributed run may all-reduce before `measure` forms the statistics from them.
///
/// Tiles depend on the shapes only, so every sum is formed in the same order whatever the number
/// of threads: results are bit-identical on 1 thread or 64.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "ogpsa/backend.hpp"
#include "ogpsa/config.hpp"
#include "ogpsa/cpu/detail/eigen_map.hpp"
#include "ogpsa/cpu/detail/gemm.hpp"
#include "ogpsa/cpu/detail/packed_gemm.hpp"
#include "ogpsa/cpu/detail/parallel.hpp"
#include "ogpsa/cpu/detail/vector_kernels.hpp"
#include "ogpsa/cpu/execution.hpp"
#include "ogpsa/detail/convert.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/element.hpp"
#include "ogpsa/error.hpp"

namespace ogpsa::cpu::detail {

/// Rows per tile of a one-column target (a multiple of `chunk_rows`, see vector_kernels.hpp).
inline constexpr index_t tile_rows = 16 * chunk_rows;
/// Elements per tile of a multi-column target: whole columns, about 1 MiB of float...
inline constexpr index_t tile_elements = index_t{1} << 18;
/// ...but at least this many columns per basis direction: Eigen's GEMM (the path of row-major and
/// 16-bit targets) packs the basis (m x k) again for every tile, which costs as much as the products
/// themselves when a tile has few columns (tall m, large k: 11008 x 64 packed for every 23 columns).
inline constexpr index_t tile_columns_per_direction = 4;
/// Rows of a GEMM operand converted at a time when it is stored in a 16-bit type.
inline constexpr index_t panel_rows = 256;
/// Bytes of traffic per thread below which waking another thread costs more than it saves.
inline constexpr index_t bytes_per_thread = index_t{1} << 20;

/// A unit of work: rows [begin, end) of a one-column target, or columns [begin, end) of another.
struct tile {
  std::size_t task = 0;
  index_t begin = 0;
  index_t end = 0;
  index_t partial = 0;  ///< offset of the tile's partial sums in `projection_workspace::partials`
};

/// Where a task's tiles and numbers live in the workspace.
struct task_placement {
  std::size_t first_tile = 0;
  std::size_t end_tile = 0;
  index_t coefficients = 0;  ///< offset of the k x n coefficients (column-major) in the packed buffer
  index_t columns = 0;       ///< offset of the n per-column scales
  bool one_column = false;   ///< a contiguous single column, for the vector kernels
};

/// Buffers reused across calls, so that a warm projection allocates nothing.
template <class A>
struct projection_workspace {
  std::vector<task_placement> tasks;
  std::vector<tile> tiles;
  std::vector<index_t> dot_bytes, update_bytes, task_work;  ///< running totals, for `share`
  std::vector<double> partials;  ///< per tile: k dot products and |g|^2, or |X_tile|^2
  /// The packed coefficients: for every task in order its k x n block (column-major, zeros when
  /// its target or basis is empty), then, with diagnostics, one |X|^2 per task.
  std::vector<A> coefficients;
  std::vector<A> original, scales;
  std::vector<std::vector<A>> panels;  ///< per team member: converted 16-bit GEMM operands
  std::vector<packed_basis<A>> packs;     ///< per team member: the basis its tiles last used, packed
  std::vector<packed_scratch<A>> scratch;  ///< per team member: the packed kernels' buffers
  /// With diagnostics, the measures of the update, packed as the coefficients are: for every task
  /// U^T X_after (k x n, zeros for a task that was not written), then one |X_after|^2 per task.
  std::vector<A> measurements;
  std::vector<packed_basis<A>> measure_packs;  ///< per team member: the basis packed for the measures
  std::vector<aligned_vector<A>> gemm_space;  ///< per team member: packing space of the update's GEMMs
  std::vector<gemm_blocking<A>> update_gemms;  ///< per task: the blocking of its update's GEMM, if any
  /// Values each member's buffers must hold for the update of the planned tasks. The update writes
  /// the targets, and must not fail half-way: it allocates nothing, its buffers are sized before.
  struct {
    index_t pack = 0, negated = 0, panel = 0, gemm = 0;
  } update_room;
};

/// The projection of a span of tasks whose bases hold `Basis` and targets `G`, accumulating in `A`.
template <class A, class Basis, class G>
class many_block_projection {
 public:
  using basis_matrix = Eigen::Matrix<Basis, Eigen::Dynamic, Eigen::Dynamic>;
  using target_ref = ogpsa::detail::matrix_ref<G, host_memory_tag>;
  using task = projection_task<basis_matrix, target_ref>;

  many_block_projection(std::span<task> tasks, projection_workspace<A>& ws, bool diagnostics)
      : tasks_(tasks), ws_(ws), diagnostics_(diagnostics) {
    plan();
  }

  /// Packs every task's coefficients C = U^T X (and |X|^2 with diagnostics) into ws.coefficients.
  /// \throws std::bad_alloc (on any thread of the team), leaving the targets as they were.
  void coefficients(const execution& exec) {
    std::fill(ws_.partials.begin(), ws_.partials.end(), 0.0);
    run_phases(
        team_size(exec, ws_.dot_bytes.back()),
        [&](int member, int members) {
          ws_.packs[static_cast<std::size_t>(member)].forget();
          const auto [first_tile, end_tile] = share(ws_.dot_bytes, member, members);
          for (std::size_t t = first_tile; t < end_tile; ++t) compute_coefficients(ws_.tiles[t], member);
        },
        [&](int member, int members) {
          const auto [first_task, end_task] = share(ws_.task_work, member, members);
          for (std::size_t i = first_task; i < end_task; ++i) gather_partials(i);
        });
  }

  /// Applies the rule to the packed coefficients (as `coefficients` left them, or all-reduced
  /// since) and writes every target, filling each task's stats (with diagnostics, from this
  /// rank's measures: see `measure`).
  /// \throws invalid_argument for a rule that scales gradients and a target of several columns
  ///         (such rules act on one vector per block), before anything is written.
  /// \throws std::bad_alloc before any target is written (the writing phase allocates nothing,
  ///         see `update_room`), or what the rule throws (then, too, no target is written). With
  ///         diagnostics the measures pack the basis and convert panels as they go, so running out
  ///         of memory there throws with some targets written.
  template <class Rule>
  void update(const execution& exec, const Rule& rule) {
    check_scaling(rule);
    const int threads = team_size(exec, ws_.update_bytes.back());
    if (diagnostics_) prepare_measurements(threads);
    run_phases(
        threads,
        [&](int member, int members) {
          ws_.packs[static_cast<std::size_t>(member)].forget();
          const auto [first_task, end_task] = share(ws_.task_work, member, members);
          for (std::size_t i = first_task; i < end_task; ++i) apply_rule(i, rule);
        },
        [&](int member, int members) {
          const auto [first_tile, end_tile] = share(ws_.update_bytes, member, members);
          for (std::size_t t = first_tile; t < end_tile; ++t) update_tile(ws_.tiles[t], member);
        });
    // On the calling thread: a few sums per tile, and no barrier that a member's exception could
    // leave the others waiting at.
    if (diagnostics_)
      for (std::size_t i = 0; i < tasks_.size(); ++i) gather_measurements(i);
  }

  /// Forms each task's measured stats (|X_after|^2 and |U^T X_after|^2) from `ws.measurements`, as
  /// `update` packed them or as summed across ranks since. A task that was not written keeps
  /// what its coefficients say.
  void measure() {
    for (std::size_t i = 0; i < tasks_.size(); ++i) finish_measurement(i);
  }

 private:
  static constexpr bool needs_panels = !std::is_same_v<Basis, A> || !std::is_same_v<G, A>;
  /// Multi-column targets of `A` values whose columns lie contiguously take the packed kernels
  /// (packed_gemm.hpp); others (contiguous rows, 16-bit targets) take Eigen's GEMM.
  static constexpr bool packs_targets = std::is_same_v<G, A>;
  static constexpr auto basis_size = static_cast<index_t>(sizeof(Basis));
  static constexpr auto gradient_size = static_cast<index_t>(sizeof(G));

  /// Cuts every task into tiles and sizes the buffers; the only step that may throw.
  /// \throws shape_error when a basis and its target disagree on the dimension.
  void plan() {
    ws_.tasks.assign(tasks_.size(), {});
    ws_.tiles.clear();
    ws_.dot_bytes.assign(1, 0);
    ws_.update_bytes.assign(1, 0);
    ws_.task_work.assign(1, 0);
    ws_.update_gemms.resize(tasks_.size());
    ws_.update_room = {};
    index_t partials = 0, coefficients = 0, columns = 0;
    for (std::size_t i = 0; i < tasks_.size(); ++i) {
      const task& t = tasks_[i];
      const basis_matrix& u = *t.basis;
      OGPSA_REQUIRE(u.rows() == t.target.rows, shape_error, "ogpsa::cpu::backend::project_all",
                    "task " << i << ": the basis has " << u.rows() << " rows, its target "
                            << t.target.rows);
      task_placement& place = ws_.tasks[i];
      place.one_column = t.target.cols == 1 && t.target.row_stride == 1;
      place.coefficients = coefficients;
      place.columns = columns;
      place.first_tile = ws_.tiles.size();
      // Without a basis nothing is removed, but diagnostics still report |X|.
      if (t.target.size() > 0 && (u.cols() > 0 || diagnostics_)) add_tiles(i, u.cols(), partials);
      place.end_tile = ws_.tiles.size();
      if (place.end_tile > place.first_tile && !place.one_column) size_update(i, u.cols());
      coefficients += u.cols() * t.target.cols;
      columns += t.target.cols;
      ws_.task_work.push_back(ws_.task_work.back() + u.cols() * t.target.cols + 1);
    }
    ws_.partials.resize(static_cast<std::size_t>(partials));
    packed_ = coefficients;
    ws_.coefficients.resize(static_cast<std::size_t>(coefficients + (diagnostics_ ? index_t(tasks_.size()) : 0)));
    if (diagnostics_) ws_.original.resize(static_cast<std::size_t>(coefficients));
    ws_.scales.resize(static_cast<std::size_t>(columns));
  }

  /// The team for `bytes` of traffic, with every member's buffers sized for the update.
  int team_size(const execution& exec, index_t bytes) {
    const int threads = static_cast<int>(std::clamp<index_t>(bytes / bytes_per_thread, 1, max_threads(exec)));
    const auto members = static_cast<std::size_t>(threads);
    if (needs_panels && ws_.panels.size() < members) ws_.panels.resize(members);
    if (ws_.packs.size() < members) ws_.packs.resize(members);
    if (ws_.scratch.size() < members) ws_.scratch.resize(members);
    if (ws_.gemm_space.size() < members) ws_.gemm_space.resize(members);
    const auto& room = ws_.update_room;
    for (std::size_t m = 0; m < members; ++m) {
      if (needs_panels) ws_.panels[m].reserve(static_cast<std::size_t>(room.panel));
      ws_.packs[m].reserve(room.pack);
      ws_.scratch[m].reserve_update(room.negated);
      if (ws_.gemm_space[m].size() < static_cast<std::size_t>(room.gemm))
        ws_.gemm_space[m].resize(static_cast<std::size_t>(room.gemm));
    }
    return threads;
  }

  /// Grows `update_room` to what task i's update takes of a member's buffers (a multi-column target:
  /// the packed basis and -R of the packed kernels, or the panels and packing space of Eigen's GEMM,
  /// whose blocking it records), for its widest tile (the first).
  void size_update(std::size_t i, index_t k) {
    const target_ref& x = tasks_[i].target;
    const tile& widest = ws_.tiles[ws_.tasks[i].first_tile];
    const index_t columns = widest.end - widest.begin;
    auto& room = ws_.update_room;
    if (packs_targets && x.column_major()) {
      room.pack = std::max(room.pack, packed_basis<A>::panel_values(x.rows, k));
      room.negated = std::max(room.negated, k * columns);
      return;
    }
    const index_t rows = needs_panels ? std::min(panel_rows, x.rows) : x.rows;
    if (needs_panels) room.panel = std::max(room.panel, rows * (k + (std::is_same_v<G, A> ? 0 : columns)));
    // Targets of another type are updated through a column-major panel of `A` values.
    const int order = !std::is_same_v<G, A> || x.column_major() ? Eigen::ColMajor : Eigen::RowMajor;
    ws_.update_gemms[i] = gemm_blocking<A>(rows, columns, k, order);
    room.gemm = std::max<index_t>(room.gemm, ws_.update_gemms[i].space());
  }

  void add_tiles(std::size_t i, index_t k, index_t& partials) {
    const target_ref& x = tasks_[i].target;
    const bool one_column = ws_.tasks[i].one_column;
    const index_t length = one_column ? x.rows : x.cols;
    const index_t step = one_column ? tile_rows
                                    : std::max<index_t>({1, tile_elements / std::max<index_t>(x.rows, 1),
                                                         tile_columns_per_direction * k});
    const index_t rows_per_unit = one_column ? 1 : x.rows;
    for (index_t begin = 0; begin < length; begin += step) {
      const index_t end = std::min(length, begin + step);
      ws_.tiles.push_back(tile{i, begin, end, partials});
      partials += one_column ? k + 1 : 1;
      const index_t elements = (end - begin) * rows_per_unit;
      // The basis counts fully for one-column tiles; a multi-column tile reads its rows of U
      // once, from cache after the first tile.
      const index_t basis_rows = one_column ? elements : 0;
      ws_.dot_bytes.push_back(ws_.dot_bytes.back() + elements * gradient_size + basis_rows * k * basis_size);
      ws_.update_bytes.push_back(ws_.update_bytes.back() + 2 * elements * gradient_size +
                                 basis_rows * k * basis_size);
    }
  }

  // ---- the coefficients ----------------------------------------------------------------------------

  void compute_coefficients(const tile& tl, int member) {
    const task& t = tasks_[tl.task];
    const basis_matrix& u = *t.basis;
    double* partial = ws_.partials.data() + tl.partial;
    if (ws_.tasks[tl.task].one_column) {
      accumulate_dots<A>(t.target.data, u.data(), u.rows(), u.cols(), tl.begin, tl.end, partial,
                         diagnostics_);
      return;
    }
    tile_products(tl, member, ws_.packs, coefficient_block(tl.task, tl.begin, tl.end).data(),
                  diagnostics_ ? partial : nullptr);
  }

  /// C = U^T X for the columns of a multi-column tile, into `c` (k x columns, column-major), and
  /// |X|^2 added to `*squares` unless it is null; by the packed kernels where they apply (see
  /// `packs_targets`, with the basis packed by rows in `packs`), else by Eigen's GEMM.
  void tile_products(const tile& tl, int member, std::vector<packed_basis<A>>& packs, A* c, double* squares) {
    const target_ref& x = tasks_[tl.task].target;
    const basis_matrix& u = *tasks_[tl.task].basis;
    const index_t columns = tl.end - tl.begin;
    if constexpr (packs_targets) {
      if (x.column_major()) {
        const A* first = x.data + tl.begin * x.col_stride;
        packed_coefficients(member_pack(packs, member, packed_basis<A>::packing::rows, tl.task), first, x.col_stride,
                            columns, c, u.cols(), member_scratch(member));
        if (squares) *squares += column_squares(first, x.rows, x.col_stride, columns);
        return;
      }
    }
    with_map(x, [&](auto& xm) {
      Eigen::Map<dense<A>> cm(c, u.cols(), columns);
      cm.setZero();
      for_panels(u, xm.middleCols(tl.begin, columns), member, [&](const auto& up, const auto& xp) {
        gemm_serial(up.transpose(), xp, cm, A(1));
        if (squares) *squares += squares_by_vector(xp);
      });
    });
  }

  /// Team member `member`'s entry of `packs`, holding task `i`'s basis in packing `wanted`, packed
  /// if it does not yet.
  packed_basis<A>& member_pack(std::vector<packed_basis<A>>& packs, int member, typename packed_basis<A>::packing wanted,
                               std::size_t i) {
    packed_basis<A>& pack = packs[static_cast<std::size_t>(member)];
    const basis_matrix& u = *tasks_[i].basis;
    pack.pack(wanted, i, u.data(), u.rows(), u.cols(), u.rows());
    return pack;
  }

  packed_scratch<A>& member_scratch(int member) { return ws_.scratch[static_cast<std::size_t>(member)]; }

  static double column_squares(const A* x, index_t rows, index_t stride, index_t cols) {
    return squares_by_vector(map_of<dense<A>, const A>(x, rows, cols, Eigen::OuterStride<>(stride)));
  }

  /// |X|^2 of a matrix expression, contiguous vector by contiguous vector (its rows when it is
  /// row-major: a column of it would be a strided walk), each in `A`, added up in double.
  template <class M>
  static double squares_by_vector(const M& x) {
    double sum = 0;
    if constexpr (M::IsRowMajor)
      for (index_t i = 0; i < x.rows(); ++i) sum += static_cast<double>(x.row(i).squaredNorm());
    else
      for (index_t j = 0; j < x.cols(); ++j) sum += static_cast<double>(x.col(j).squaredNorm());
    return sum;
  }

  /// Calls f(U_p, X_p) for row panels of the basis and a tile's columns, both as `A` matrices:
  /// the data itself when stored in `A`, else converted copies, one panel at a time.
  template <class Tile, class F>
  void for_panels(const basis_matrix& u, const Tile& x, int member, F&& f) {
    if constexpr (!needs_panels) {
      f(u, x);
    } else {
      for (index_t row = 0; row < u.rows(); row += panel_rows) {
        const index_t rows = std::min(panel_rows, u.rows() - row);
        A* buffer = panel_buffer(member, rows * (u.cols() + x.cols()));
        f(as_work(u.middleRows(row, rows), buffer), as_work(x.middleRows(row, rows), buffer + rows * u.cols()));
      }
    }
  }

  A* panel_buffer(int member, index_t size) {
    auto& p = ws_.panels[static_cast<std::size_t>(member)];
    if (p.size() < static_cast<std::size_t>(size)) p.resize(static_cast<std::size_t>(size));
    return p.data();
  }

  /// `m` as a matrix of `A`: itself when it holds `A`, else widened into `buffer`.
  template <class M>
  static auto as_work(const M& m, A* buffer) {
    if constexpr (std::is_same_v<typename M::Scalar, A>) {
      return m;
    } else {
      Eigen::Map<dense<A>> out(buffer, m.rows(), m.cols());
      out = m.unaryExpr([](typename M::Scalar v) { return ogpsa::detail::widen<A>(v); });
      return out;
    }
  }

  Eigen::Map<dense<A>> coefficient_block(std::size_t i, index_t first, index_t end) {
    const index_t k = tasks_[i].basis->cols();
    return {ws_.coefficients.data() + ws_.tasks[i].coefficients + first * k, k, end - first};
  }

  /// Adds a task's partial sums in tile order and packs them: the coefficients of a one-column
  /// target (a multi-column target's tiles wrote theirs), and |X|^2 with diagnostics. A task
  /// without tiles packs zeros.
  void gather_partials(std::size_t i) {
    const task_placement& place = ws_.tasks[i];
    const index_t k = tasks_[i].basis->cols(), n = tasks_[i].target.cols;
    A* packed = ws_.coefficients.data() + place.coefficients;
    double squares = 0;
    if (place.end_tile == place.first_tile)
      std::fill(packed, packed + k * n, A(0));
    else
      squares = sum_tile_partials(place, k, packed);
    if (diagnostics_) ws_.coefficients[static_cast<std::size_t>(packed_) + i] = static_cast<A>(squares);
  }

  /// Adds the partial sums of a task's tiles (at least one) into its first tile's, in tile order
  /// (the same bits on any number of threads), packs the k sums of a one-column target into
  /// `packed` (a multi-column target's tiles wrote theirs) and returns the summed |X|^2.
  double sum_tile_partials(const task_placement& place, index_t k, A* packed) {
    const index_t width = place.one_column ? k + 1 : 1;
    double* total = ws_.partials.data() + ws_.tiles[place.first_tile].partial;
    for (std::size_t t = place.first_tile + 1; t < place.end_tile; ++t) {
      const double* partial = ws_.partials.data() + ws_.tiles[t].partial;
      for (index_t j = 0; j < width; ++j) total[j] += partial[j];
    }
    if (place.one_column)
      for (index_t j = 0; j < k; ++j) packed[j] = static_cast<A>(total[j]);
    return total[width - 1];
  }

  // ---- the update: rules, then targets ----------------------------------------------------------

  template <class Rule>
  void apply_rule(std::size_t i, const Rule& rule) {
    const task_placement& place = ws_.tasks[i];
    projection_stats& stats = tasks_[i].stats;
    stats = projection_stats{};
    if (place.end_tile == place.first_tile) return;
    const index_t k = tasks_[i].basis->cols(), n = tasks_[i].target.cols;
    auto c = coefficient_block(i, 0, n);
    if (diagnostics_) stats.gradient_sq = static_cast<double>(ws_.coefficients[static_cast<std::size_t>(packed_) + i]);
    stats.finite = c.allFinite() && std::isfinite(stats.gradient_sq);
    if (!stats.finite) return;
    stats.coefficient_sq = squared_norm(c);
    Eigen::Map<dense<A>> original(ws_.original.data() + place.coefficients, diagnostics_ ? k : 0,
                                  diagnostics_ ? n : 0);
    if (diagnostics_) original = c;
    A* scales = ws_.scales.data() + place.columns;
    for (index_t j = 0; j < n; ++j) {
      scales[j] = rule.apply(c.col(j).data(), k);
      stats.scale = static_cast<double>(scales[j]);
      stats.changed = stats.changed || scales[j] != A(1) || !c.col(j).isZero(0);
    }
    if (diagnostics_) stats.removed_sq = removed_squares(stats.gradient_sq, original, c, scales);
  }

  template <class M>
  static double squared_norm(const M& m) {
    double sum = 0;
    for (index_t j = 0; j < m.cols(); ++j) sum += static_cast<double>(m.col(j).squaredNorm());
    return sum;
  }

  /// |(1 - s) X + U R|^2, what the rule removes, from the original coefficients C = U^T X, the
  /// removed ones R and the scales s, column by column as two orthogonal parts: in the subspace
  /// |(1 - s) c + r|^2, outside it (1 - s)^2 (|x|^2 - |c|^2). Only one-column targets scale
  /// (`check_scaling`), so the second part needs |X|^2 alone; it is weighted by (1 - s)^2, so the
  /// cancellation in |x|^2 - |c|^2 never matters for rules that scale or remove, not both.
  template <class M>
  static double removed_squares(double gradient_sq, const M& original, const M& removed, const A* scales) {
    double sum = 0;
    for (index_t j = 0; j < original.cols(); ++j) {
      const double s = static_cast<double>(scales[j]);
      for (index_t i = 0; i < original.rows(); ++i) {
        const double part = (1 - s) * static_cast<double>(original(i, j)) + static_cast<double>(removed(i, j));
        sum += part * part;
      }
    }
    const double s = static_cast<double>(scales[0]);
    if (original.cols() == 1 && s != 1)
      sum += (1 - s) * (1 - s) * std::max(0.0, gradient_sq - squared_norm(original));
    return sum;
  }

  /// \throws invalid_argument when the rule may scale whole gradients and a target has several
  ///         columns, naming the first.
  template <class Rule>
  void check_scaling(const Rule& rule) const {
    if (!rule.scales_gradient()) return;
    for (std::size_t i = 0; i < tasks_.size(); ++i)
      OGPSA_REQUIRE(tasks_[i].target.cols <= 1, invalid_argument, "ogpsa::cpu::backend::update_all",
                    Rule::name << " in this mode scales whole gradients and applies to one-column targets only; task "
                               << i << " has " << tasks_[i].target.cols << " columns");
  }

  void update_tile(const tile& tl, int member) {
    const task& t = tasks_[tl.task];
    if (!t.stats.finite || !t.stats.changed) return;
    const basis_matrix& u = *t.basis;
    const task_placement& place = ws_.tasks[tl.task];
    const A* scales = ws_.scales.data() + place.columns;
    if (place.one_column) {
      const A* r = ws_.coefficients.data() + place.coefficients;
      if (diagnostics_)
        update_and_measure_rows<A>(t.target.data, u.data(), u.rows(), u.cols(), r, scales[0], tl.begin, tl.end,
                                   ws_.partials.data() + tl.partial);
      else
        update_rows<A>(t.target.data, u.data(), u.rows(), u.cols(), r, scales[0], tl.begin, tl.end);
      return;
    }
    const auto r = coefficient_block(tl.task, tl.begin, tl.end);
    const A* s = scales + tl.begin;
    if (tile_changed(r, s)) write_tile(tl, r, s, member);
    // Also the tiles left as they were: a rank's measures must be its whole part of the sums.
    if (diagnostics_)
      tile_products(tl, member, ws_.measure_packs, measurement_block(tl.task, tl.begin),
                    ws_.partials.data() + tl.partial);
  }

  /// X <- X diag(s) - U R for the columns of a multi-column tile.
  void write_tile(const tile& tl, const Eigen::Map<dense<A>>& r, const A* s, int member) {
    const task& t = tasks_[tl.task];
    if constexpr (packs_targets) {
      if (t.target.column_major()) {
        update_packed(tl, r, s, member);
        return;
      }
    }
    with_map(t.target, [&](auto& x) {
      update_columns(*t.basis, x.middleCols(tl.begin, tl.end - tl.begin), r, s, member, ws_.update_gemms[tl.task]);
    });
  }

  // ---- the measures -----------------------------------------------------------------------------

  /// Sizes the measures' buffers and clears the tiles' partial sums (the coefficients' partial
  /// sums were packed already: the measures reuse them).
  void prepare_measurements(int threads) {
    ws_.measurements.resize(static_cast<std::size_t>(packed_) + tasks_.size());
    if (ws_.measure_packs.size() < static_cast<std::size_t>(threads))
      ws_.measure_packs.resize(static_cast<std::size_t>(threads));
    for (auto& pack : ws_.measure_packs) pack.forget();
    std::fill(ws_.partials.begin(), ws_.partials.end(), 0.0);
  }

  /// Where the measured U^T X_after of task i's columns from `first` on lies.
  A* measurement_block(std::size_t i, index_t first) {
    return ws_.measurements.data() + ws_.tasks[i].coefficients + first * tasks_[i].basis->cols();
  }

  /// Adds a task's measured partial sums in tile order and packs them (zeros for a task that was
  /// not written), then forms its stats.
  void gather_measurements(std::size_t i) {
    const task_placement& place = ws_.tasks[i];
    const index_t k = tasks_[i].basis->cols(), n = tasks_[i].target.cols;
    A* packed = measurement_block(i, 0);
    A& squares = ws_.measurements[static_cast<std::size_t>(packed_) + i];
    const projection_stats& stats = tasks_[i].stats;
    if (!stats.finite || !stats.changed) {
      std::fill(packed, packed + k * n, A(0));
      squares = A(0);
    } else {
      squares = static_cast<A>(sum_tile_partials(place, k, packed));
    }
    finish_measurement(i);
  }

  void finish_measurement(std::size_t i) {
    projection_stats& stats = tasks_[i].stats;
    if (!stats.finite) return;
    if (!stats.changed) {
      stats.projected_sq = stats.gradient_sq;
      stats.remaining_coefficient_sq = stats.coefficient_sq;
      return;
    }
    const index_t k = tasks_[i].basis->cols(), n = tasks_[i].target.cols;
    stats.projected_sq = static_cast<double>(ws_.measurements[static_cast<std::size_t>(packed_) + i]);
    stats.remaining_coefficient_sq = squared_norm(Eigen::Map<const dense<A>>(measurement_block(i, 0), k, n));
  }

  /// X <- X diag(s) - U R for a tile's columns, by the packed kernels (see `packs_targets`).
  void update_packed(const tile& tl, const Eigen::Map<dense<A>>& r, const A* s, int member) {
    const target_ref& x = tasks_[tl.task].target;
    const packed_basis<A>& pack = member_pack(ws_.packs, member, packed_basis<A>::packing::panels, tl.task);
    packed_update(pack, x.data + tl.begin * x.col_stride, x.col_stride, tl.end - tl.begin, r.data(), r.rows(), s,
                  member_scratch(member));
  }

  static bool tile_changed(const Eigen::Map<dense<A>>& r, const A* scales) {
    for (index_t j = 0; j < r.cols(); ++j)
      if (scales[j] != A(1) || !r.col(j).isZero(0)) return true;
    return false;
  }

  /// X <- X diag(s) - U R for a tile's columns, by Eigen's GEMM with `blocking` (see `size_update`).
  template <class Tile>
  void update_columns(const basis_matrix& u, Tile x, const Eigen::Map<dense<A>>& r, const A* s,
                      int member, const gemm_blocking<A>& blocking) {
    A* space = ws_.gemm_space[static_cast<std::size_t>(member)].data();
    if constexpr (!needs_panels) {
      scale_columns(x, s);
      gemm_serial(u, r, x, A(-1), blocking, space);
    } else if constexpr (std::is_same_v<G, A>) {  // only the basis needs converting
      scale_columns(x, s);
      for (index_t row = 0; row < u.rows(); row += panel_rows) {
        const index_t rows = std::min(panel_rows, u.rows() - row);
        A* buffer = panel_buffer(member, rows * u.cols());
        gemm_serial(as_work(u.middleRows(row, rows), buffer), r, x.middleRows(row, rows), A(-1), blocking, space);
      }
    } else {
      for (index_t row = 0; row < u.rows(); row += panel_rows) {
        const index_t rows = std::min(panel_rows, u.rows() - row);
        A* buffer = panel_buffer(member, rows * (u.cols() + x.cols()));
        auto xp = x.middleRows(row, rows);
        Eigen::Map<dense<A>> work(buffer + rows * u.cols(), rows, x.cols());
        work = xp.unaryExpr([](G v) { return ogpsa::detail::widen<A>(v); });
        scale_columns(work, s);
        gemm_serial(as_work(u.middleRows(row, rows), buffer), r, work, A(-1), blocking, space);
        xp = work.unaryExpr([](A v) { return ogpsa::detail::narrow<G>(v); });
      }
    }
  }

  template <class M>
  static void scale_columns(M&& x, const A* s) {
    for (index_t j = 0; j < x.cols(); ++j)
      if (s[j] != A(1)) x.col(j) *= s[j];
  }

  std::span<task> tasks_;
  projection_workspace<A>& ws_;
  bool diagnostics_;
  index_t packed_ = 0;  ///< coefficients in the packed buffer, before the |X|^2 of each task
};

}  // namespace ogpsa::cpu::detail
