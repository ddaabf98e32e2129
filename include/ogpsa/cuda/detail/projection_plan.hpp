#pragma once
/// \file
/// The host half of a many-block projection (`cuda::backend::coefficients_all`, `update_all`
/// and `project_all`): which blocks take the fused flat kernels and which the batched GEMMs, how
/// the flat work splits into chunks, how matrix-side blocks group into batched GEMM calls, and
/// where every intermediate lives in the workspace. Pure host code, tested without a device.
///
/// A call runs a constant number of launches whatever the number of blocks: one reduction over
/// all flat blocks and one batched GEMM per distinct matrix shape for the coefficients, one
/// kernel that packs them, two that apply the rule to every block and gather its flags, one flat
/// update, and one batched GEMM per shape for the matrix-side updates.
///
/// The packed coefficients are what a data-parallel all-reduce sums between the two phases: for
/// every task in task order, its k x cols coefficients (column-major, zero for an empty target),
/// then, with diagnostics, one partial |x|^2 per task: the host backend's order. It depends on k
/// and cols only, so ranks holding different shards of the same blocks agree on it. The
/// matrix-side GEMMs do not write there (a task's block starts wherever the blocks before it
/// end, and GEMMs need 16-byte aligned outputs): they write their products to aligned scratch,
/// which the packing kernel then copies (or adds, for the halves of a split basis) into place.
///
/// With diagnostics, the update phase then measures what it wrote: the same reduction, GEMMs and
/// packing run once more over the projected blocks, into a second buffer in that order (U^T x
/// and |x|^2 after), from which each block's record takes |x_after|^2 and |U^T x_after|^2.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "ogpsa/bfloat16.hpp"
#include "ogpsa/config.hpp"
#include "ogpsa/cuda/detail/device_ref.hpp"
#include "ogpsa/cuda/detail/element_cast.hpp"
#include "ogpsa/cuda/detail/launch.hpp"
#include "ogpsa/element.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/float16.hpp"

namespace ogpsa::cuda::detail {

/// One block to project, with its element types erased (the plan of a call fixes them): its
/// basis (basis_rows x k, column-major, leading dimension basis_rows) and its target-space
/// vectors (see `ogpsa::family`).
struct block_task {
  const void* basis = nullptr;
  index_t basis_rows = 0;
  index_t k = 0;
  device_ref<void> target{};
};

/// Elements per packet load of the fused flat kernels: 16 bytes of the wider of the two types.
template <class G, class B>
inline constexpr int packet_width = static_cast<int>(16 / std::max(sizeof(G), sizeof(B)));

/// Packet loads per thread (and basis column) in one chunk, the unit of work of one block.
inline constexpr int chunk_steps = 8;

/// Target columns per block of the packing and rule kernels (one per thread), so that a wide
/// matrix-side block spreads over many blocks instead of queueing on one multiprocessor.
inline constexpr index_t column_chunk = block_threads;

template <class G, class B>
inline constexpr index_t chunk_elements = index_t{block_threads} * packet_width<G, B> * chunk_steps;

/// How matrix-side products are formed. cuBLAS multiplies operands of one element type and the
/// large operand is the gradient, so the products run in E = G, accumulating in fp32 (fp64 for
/// double). An operand E cannot hold exactly (a float basis, or the float coefficients, with
/// bf16 or fp16 gradients) is split in two, hi = E(v) and lo = E(v - hi), so that the tensor-core
/// products stay exact to about 2^-16 relative (2^-22 for fp16), far below the gradient's own
/// rounding. The update then sums the product terms U_hi R_hi + U_lo R_hi + U_hi R_lo (the
/// lo-lo term is below that rounding), as one GEMM over stacked operands.
template <class G, class B>
struct gemm_plan {
  using gemm_type = G;
  using accumulator = accumulator_t<G, B>;
  using cublas_accumulator = std::conditional_t<std::is_same_v<G, double>, double, float>;

  /// A double basis with narrower gradients asks for fp64 accumulation, which cuBLAS does not
  /// offer on narrower operands.
  static constexpr bool supported = std::is_same_v<accumulator, cublas_accumulator>;

  static constexpr bool basis_exact = std::is_same_v<B, G> || std::is_same_v<G, double> ||
                                      (std::is_same_v<G, float> && sizeof(B) == 2);
  static constexpr int basis_parts = basis_exact ? 1 : 2;
  static constexpr int coefficient_parts = std::is_same_v<accumulator, G> ? 1 : 2;
  static constexpr int terms = basis_parts * coefficient_parts == 4 ? 3 : basis_parts * coefficient_parts;
  /// Whether the update's basis operand must be built (converted, split or repeated) per call.
  static constexpr bool build_basis = !std::is_same_v<B, G> || terms > 1;

  /// Which part (0: hi or whole, 1: lo) of the basis and of the coefficients term t multiplies.
  static constexpr OGPSA_HOST_DEVICE int basis_part(int t) { return basis_parts == 2 && t == 1 ? 1 : 0; }
  static constexpr OGPSA_HOST_DEVICE int coefficient_part(int t) { return coefficient_parts == 2 && t == terms - 1 ? 1 : 0; }

  /// fp16 holds neither the largest coefficients (|c| <= |x| <= 65504 sqrt(rows)) nor, as
  /// normal numbers, the small ones and their lo parts (below 2^-14), and no single scale fits
  /// every gradient. So fp16 coefficients are scaled before the split by a power of two chosen
  /// from the largest |r| over the blocks of one batched GEMM call (whose alpha undoes it): that
  /// largest lands in [2^13, 2^14), and smaller ones keep both parts normal down to 2^-17 of it.
  /// bf16 and wider types have float's range and are not scaled.
  static constexpr bool scaled_coefficients = std::is_same_v<G, float16> && coefficient_parts == 2;

  /// What the rule kernels keep per call (by integer maximum, so the order of blocks does not
  /// matter): the binary exponent of |r| plus a bias, 0 for no finite nonzero coefficient.
  static constexpr int exponent_bias = 1 << 12;
  static OGPSA_HOST_DEVICE int biased_exponent(float magnitude) {
    if (!(magnitude > 0.0f && magnitude <= 0x1.fffffep127f)) return 0;  // zero, NaN or infinite
    int e = 0;
    frexpf(magnitude, &e);  // magnitude = f 2^e, f in [0.5, 1)
    return e + exponent_bias;
  }

  /// The factor the coefficients of a call whose largest biased exponent is `largest` are
  /// scaled by before the split.
  static OGPSA_HOST_DEVICE float coefficient_scale(int largest) {
    if (!scaled_coefficients || largest == 0) return 1.0f;
    return ldexpf(1.0f, 14 - (largest - exponent_bias));
  }
};

/// hi = E(v), lo = E(v - hi): part 0 or 1 of v in E (part 0 is v itself when E holds it).
template <class E, class W>
OGPSA_HOST_DEVICE E split_part(W value, int part) {
  const E hi = element_cast<E>(value);
  return part == 0 ? hi : element_cast<E>(value - element_cast<W>(hi));
}

/// A reduction over one vector set: per chunk, the k coefficients u_j^T x and, with
/// diagnostics, |x|^2. The vectors are `outer` runs of `inner` contiguous elements.
struct reduce_entry {
  void* x;              // gradient elements
  const void* u;        // basis elements, column j at u + j * ld; null when k == 0 (the norm only)
  index_t inner;
  index_t outer;
  index_t outer_stride;
  index_t ld;
  index_t first_chunk;  // chunks of the entries before this one
  index_t chunks;
  index_t partials;     // offset of this entry's values x chunks partial sums
  index_t first_value;  // values of the entries before this one (the grid of the final sums)
  int k;
  int values;           // k, plus one for |x|^2 with diagnostics
  int slot;
  int packets;          // 1: x, u and ld allow aligned packet loads
  int shift;            // > 0: only x is off the packet boundary, by `shift` elements; the
                        // reduction still loads packets (shifted across lanes), the update not
};

/// One block as the packing and rule kernels see it.
struct slot_entry {
  index_t packed;        // offset of its k x cols coefficients in the packed buffer
  index_t norm;          // index of its |x|^2 in the packed buffer, -1 without diagnostics
  index_t products;      // matrix blocks: offset of the GEMM's (parts k) x cols output, else -1
  index_t work;          // offset of its 2k x cols working copy: r on top, the original c below
  index_t cols;
  index_t first_column_chunk;  // column chunks of the slots before this one
  index_t column_chunks;
  index_t update;        // matrix blocks: offset of the (terms * k) x cols coefficient operand
  int k;
  int reduce;            // its reduce entry, or -1
  int matrix;            // 1: matrix-side (GEMMs), 0: flat (fused kernels)
  int parts;             // matrix blocks: parts of the basis in the GEMM's output (2: hi and lo halves)
  int group;             // matrix blocks: the batched GEMM call it is a member of, else -1
};

/// One matrix-side basis to convert into the update GEMM's operand [part(t) of U for each term t].
struct basis_entry {
  const void* u;
  void* operand;
  index_t rows;
  int k;
};

/// A batched GEMM call: the members [first, first + count) of the member arrays.
struct group_entry {
  int first;
  int count;
};

/// Per-block numbers for diagnostics (projection_stats without the flags).
struct projection_record {
  double gradient_sq;
  double coefficient_sq;
  double removed_sq;
  double projected_sq;
  double remaining_coefficient_sq;
  double scale;
};

/// Per-block sums the rule kernels reduce over columns, in double, in this order: |c|^2, the part
/// in the subspace of what the rule removes, |(1 - s) c + r|^2, and two counts.
enum rule_sum { coefficient_sq, removed_sq, non_finite, removed_any, rule_sums };

/// Bits of a block's flag byte.
inline constexpr std::uint8_t flag_finite = 1, flag_changed = 2;

/// Bytes every address a batched GEMM reads or writes in the workspace, and every pointer array
/// it is handed, is aligned to: tensor-core and TF32 kernels fault on less
/// (`cudaErrorMisalignedAddress`, which ends the process's CUDA context).
inline constexpr std::size_t gemm_alignment = 16;

/// `count` elements of T rounded up so that the next region of T starts `gemm_alignment`-aligned.
template <class T>
constexpr index_t gemm_aligned(index_t count) {
  constexpr auto per = static_cast<index_t>(gemm_alignment / sizeof(T) > 0 ? gemm_alignment / sizeof(T) : 1);
  return (count + per - 1) / per * per;
}

/// The shape shared by the members of one batched GEMM call.
struct gemm_shape {
  index_t rows = 0, cols = 0, k = 0, ld = 0;
  bool row_major = false;
  friend bool operator==(const gemm_shape&, const gemm_shape&) = default;
};

/// Byte offsets of regions in one allocation, each aligned for any element type and for
/// coalesced access.
class offset_allocator {
 public:
  static constexpr std::size_t alignment = 256;
  template <class T>
  std::size_t add(std::size_t count) {
    const std::size_t at = end_;
    end_ = round_up(end_ + count * sizeof(T));
    return at;
  }
  std::size_t size() const noexcept { return end_; }
  static std::size_t round_up(std::size_t n) { return (n + alignment - 1) / alignment * alignment; }

 private:
  std::size_t end_ = 0;
};

/// Where everything lives for one call. The descriptors (`blob`) are built on the host and
/// uploaded in one copy; the rest is device scratch. The results (records, flags, then the
/// largest coefficient exponent of each batched GEMM call) are what comes back to the host: no
/// records without diagnostics.
struct workspace_offsets {
  std::size_t blob = 0;  // bytes of the uploaded descriptors, at offset 0
  std::size_t reduce = 0, slots = 0, bases = 0, groups = 0;
  std::size_t member_slot = 0, member_basis = 0, member_update = 0, member_target = 0, member_coefficients = 0;
  std::size_t member_measures = 0;           // where each member's measuring GEMM writes
  std::size_t packed = 0, packed_count = 0;  // the packed coefficients: offset, elements
  std::size_t measures = 0;                  // with diagnostics, packed_count measures after the update
  std::size_t partials = 0, products = 0, work = 0, rule_partials = 0, update_operand = 0, basis_operand = 0, scales = 0;
  std::size_t compact_basis = 0, compact_update = 0, compact_target = 0;
  std::size_t scalars = 0;  // the update GEMMs' alphas and beta, when they are read on the device
  std::size_t records = 0, flags = 0, exponents = 0;  // adjacent: one copy brings them back
  std::size_t total = 0;
};

/// The plan of one `project_all` call. Reused across calls (its vectors keep their capacity), so
/// a warm projection allocates nothing on the host.
class projection_plan {
 public:
  /// Classifies the tasks of a call over gradients G and bases B and sizes everything. Tasks
  /// with an empty target get no slot, nor those with an empty basis unless diagnostics ask for
  /// their |x|^2 (a reduction alone, never a write).
  /// \throws shape_error when a basis and its target disagree on rows, invalid_argument for a
  ///         null basis or a matrix-side block whose types cuBLAS cannot multiply at the
  ///         requested accumulation.
  template <class G, class B>
  void build(std::span<const block_task> tasks, bool diagnostics, const char* where) {
    clear();
    tasks_ = tasks.size();
    diagnostics_ = diagnostics;
    accumulator_bytes_ = sizeof(typename gemm_plan<G, B>::accumulator);
    width_ = packet_width<G, B>;
    chunk_ = chunk_elements<G, B>;
    for (std::size_t i = 0; i < tasks.size(); ++i) classify<G, B>(tasks[i], i, where);
    // Flat blocks first (the update kernel covers exactly their chunks), then the norm-only
    // entries of matrix blocks.
    for (std::size_t s = 0; s < slot_task_.size(); ++s)
      if (!slots_[s].matrix) add_reduce<G, B>(tasks[slot_task_[s]], static_cast<int>(s), true);
    flat_chunks_ = total_chunks_;
    flat_entries_ = reduce_.size();
    if (diagnostics)
      for (std::size_t s = 0; s < slot_task_.size(); ++s)
        if (slots_[s].matrix) add_reduce<G, B>(tasks[slot_task_[s]], static_cast<int>(s), false);
    group_members(tasks);
    size_regions<G, B>(tasks);
  }

  /// Writes the descriptors into `blob` (host memory of `offsets().blob` bytes) with the device
  /// addresses they will have in the workspace that starts at `device`.
  template <class G, class B>
  void fill(std::byte* blob, std::byte* device, std::span<const block_task> tasks) const {
    using gemm = gemm_plan<G, B>;
    using E = typename gemm::gemm_type;
    using accumulator = typename gemm::accumulator;
    std::copy(reduce_.begin(), reduce_.end(), reinterpret_cast<reduce_entry*>(blob + offsets_.reduce));
    std::copy(slots_.begin(), slots_.end(), reinterpret_cast<slot_entry*>(blob + offsets_.slots));
    std::copy(group_entries_.begin(), group_entries_.end(), reinterpret_cast<group_entry*>(blob + offsets_.groups));
    auto* bases = reinterpret_cast<basis_entry*>(blob + offsets_.bases);
    auto* member_slot = reinterpret_cast<int*>(blob + offsets_.member_slot);
    auto* member_basis = reinterpret_cast<const void**>(blob + offsets_.member_basis);
    auto* member_update = reinterpret_cast<const void**>(blob + offsets_.member_update);
    auto* member_target = reinterpret_cast<void**>(blob + offsets_.member_target);
    auto* member_coefficients = reinterpret_cast<void**>(blob + offsets_.member_coefficients);
    auto* member_measures = reinterpret_cast<void**>(blob + offsets_.member_measures);
    for (std::size_t m = 0; m < members_.size(); ++m) {
      const int s = members_[m];
      if (s < 0) {  // padding between groups
        if constexpr (gemm::build_basis) bases[m] = basis_entry{nullptr, nullptr, 0, 0};
        member_slot[m] = -1;
        member_basis[m] = member_update[m] = nullptr;
        member_target[m] = member_coefficients[m] = member_measures[m] = nullptr;
        continue;
      }
      const block_task& t = tasks[slot_task_[static_cast<std::size_t>(s)]];
      const slot_entry& e = slots_[static_cast<std::size_t>(s)];
      const void* operand = t.basis;
      if constexpr (gemm::build_basis) {
        E* built = reinterpret_cast<E*>(device + offsets_.basis_operand) + basis_offset_[m];
        bases[m] = basis_entry{t.basis, built, t.target.rows, static_cast<int>(t.k)};
        operand = built;
      }
      member_slot[m] = s;
      member_basis[m] = operand;
      member_update[m] = reinterpret_cast<const E*>(device + offsets_.update_operand) + e.update;
      member_target[m] = t.target.data;
      // The GEMM writes U^T X (or its two halves) to aligned scratch, both before the update and
      // when measuring after it; the packing kernel moves it into the packed buffer.
      accumulator* products = reinterpret_cast<accumulator*>(device + offsets_.products) + e.products;
      member_coefficients[m] = products;
      member_measures[m] = products;
    }
  }

  const workspace_offsets& offsets() const noexcept { return offsets_; }
  bool diagnostics() const noexcept { return diagnostics_; }
  /// The tasks the plan was built for.
  std::size_t tasks() const noexcept { return tasks_; }
  /// The packed coefficients' element size: the accumulator type of the call.
  std::size_t accumulator_bytes() const noexcept { return accumulator_bytes_; }
  /// Blocks that get computed, and the task each one is.
  std::size_t slots() const noexcept { return slots_.size(); }
  std::size_t task_of(std::size_t slot) const { return slot_task_[slot]; }
  const std::vector<slot_entry>& slot_entries() const noexcept { return slots_; }
  /// Reduce entries (all) and those of flat blocks (a prefix), with their chunk totals.
  const std::vector<reduce_entry>& reduce() const noexcept { return reduce_; }
  std::size_t flat_entries() const noexcept { return flat_entries_; }
  index_t total_chunks() const noexcept { return total_chunks_; }
  /// Values over all reduce entries: one block each adds a value's chunk sums.
  index_t reduce_values() const noexcept { return reduce_values_; }
  /// Column chunks over all slots: the grid of the packing and rule kernels.
  index_t column_chunks() const noexcept { return column_chunks_; }
  index_t flat_chunks() const noexcept { return flat_chunks_; }
  /// Matrix-side batched GEMM calls: their shape and members (slots, contiguous per call).
  const std::vector<gemm_shape>& groups() const noexcept { return shapes_; }
  const std::vector<group_entry>& group_entries() const noexcept { return group_entries_; }
  /// Member positions, -1 for the padding between groups.
  const std::vector<int>& members() const noexcept { return members_; }
  /// Matrix-side blocks (members of a batched GEMM call).
  std::size_t matrix_blocks() const noexcept { return matrix_blocks_; }
  /// Basis operands built per call (one per member when the types need it, else none).
  std::size_t built_bases() const noexcept { return built_bases_; }
  /// Bytes the results copy brings back: records (with diagnostics), flags and exponents, adjacent.
  std::size_t result_offset() const noexcept { return diagnostics_ ? offsets_.records : offsets_.flags; }
  std::size_t result_bytes() const noexcept {
    return offsets_.exponents + shapes_.size() * sizeof(int) - result_offset();
  }

 private:
  void clear() {
    tasks_ = 0;
    reduce_.clear();
    slots_.clear();
    slot_task_.clear();
    shapes_.clear();
    group_entries_.clear();
    members_.clear();
    basis_offset_.clear();
    packed_at_.clear();
    total_chunks_ = flat_chunks_ = column_chunks_ = 0;
    flat_entries_ = built_bases_ = matrix_blocks_ = 0;
    offsets_ = {};
  }

  static bool flat(const device_ref<void>& target) { return target.cols == 1 && target.row_stride == 1; }

  template <class G, class B>
  void classify(const block_task& t, std::size_t i, const char* where) {
    OGPSA_REQUIRE(t.basis_rows == t.target.rows || t.k == 0, shape_error, where,
                  "block " << i << ": the basis has " << t.basis_rows << " rows, the target "
                           << t.target.rows);
    // Without a basis nothing is removed, but diagnostics still report |x| (through a reduction
    // alone, whatever the target's shape).
    if (t.target.size() == 0 || (t.k == 0 && !diagnostics_)) return;
    OGPSA_REQUIRE(t.basis != nullptr || t.k == 0, invalid_argument, where, "block " << i << " has a null basis");
    const bool matrix = t.k > 0 && !flat(t.target);
    constexpr bool supported = gemm_plan<G, B>::supported;
    if (matrix)
      OGPSA_REQUIRE(supported, invalid_argument, where,
                    "block " << i << " is matrix-side (" << t.target.rows << " x " << t.target.cols
                             << ") and cuBLAS cannot accumulate " << element_traits<G>::name
                             << " gradients in double: use a basis no wider than the gradient's "
                                "accumulator, or flat blocks");
    slot_task_.push_back(i);
    const index_t cols = matrix ? t.target.cols : 1;
    const index_t chunks = (cols + column_chunk - 1) / column_chunk;
    slots_.push_back(slot_entry{0, -1, -1, 0, cols, column_chunks_, chunks, 0, static_cast<int>(t.k), -1, matrix ? 1 : 0,
                                gemm_plan<G, B>::basis_parts, -1});
    column_chunks_ += chunks;
  }

  static bool aligned(const void* p, std::size_t bytes) {
    return reinterpret_cast<std::uintptr_t>(p) % bytes == 0;
  }

  template <class G, class B>
  void add_reduce(const block_task& t, int slot, bool with_basis) {
    const device_ref<void>& x = t.target;
    const bool by_columns = x.column_major();
    reduce_entry e{};
    e.x = x.data;
    e.u = with_basis ? t.basis : nullptr;
    e.inner = by_columns ? x.rows : x.cols;
    e.outer = by_columns ? x.cols : x.rows;
    e.outer_stride = by_columns ? x.col_stride : x.row_stride;
    e.ld = x.rows;
    e.k = with_basis ? static_cast<int>(t.k) : 0;
    e.values = e.k + (diagnostics_ ? 1 : 0);
    e.slot = slot;
    const index_t elements = e.inner * e.outer;
    const bool contiguous = e.outer == 1 || e.outer_stride == e.inner;
    const bool basis_packets =
        e.u == nullptr || (e.ld % width_ == 0 && aligned(e.u, static_cast<std::size_t>(width_) * sizeof(B)));
    const bool whole_packets = contiguous && elements % width_ == 0 && basis_packets;
    const auto x_offset = static_cast<int>(reinterpret_cast<std::uintptr_t>(e.x) / sizeof(G) % static_cast<std::size_t>(width_));
    e.packets = whole_packets && aligned(e.x, static_cast<std::size_t>(width_) * sizeof(G));
    e.shift = whole_packets && aligned(e.x, sizeof(G)) ? x_offset : 0;
    e.chunks = (elements + chunk_ - 1) / chunk_;
    e.first_chunk = total_chunks_;
    total_chunks_ += e.chunks;
    slots_[static_cast<std::size_t>(slot)].reduce = static_cast<int>(reduce_.size());
    reduce_.push_back(e);
  }

  static gemm_shape shape_of(const block_task& t) {
    const device_ref<void>& x = t.target;
    const bool row_major = !x.column_major();
    return gemm_shape{x.rows, x.cols, t.k, row_major ? x.row_stride : x.col_stride, row_major};
  }

  /// Members of each shape, in slot order, contiguous per group; each group starts at an even
  /// position so that its pointer arrays are `gemm_alignment`-aligned (the positions between
  /// groups hold -1 and belong to no call).
  void group_members(std::span<const block_task> tasks) {
    matrix_blocks_ = 0;
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      if (!slots_[s].matrix) continue;
      const gemm_shape shape = shape_of(tasks[slot_task_[s]]);
      const auto found = std::find(shapes_.begin(), shapes_.end(), shape);
      slots_[s].group = static_cast<int>(found - shapes_.begin());
      if (found == shapes_.end()) shapes_.push_back(shape);
      ++matrix_blocks_;
    }
    constexpr int pointers_per_alignment = static_cast<int>(gemm_alignment / sizeof(void*));
    group_entries_.assign(shapes_.size(), group_entry{0, 0});
    for (const slot_entry& e : slots_)
      if (e.matrix) ++group_entries_[static_cast<std::size_t>(e.group)].count;
    int end = 0;
    for (group_entry& g : group_entries_) {
      g.first = (end + pointers_per_alignment - 1) / pointers_per_alignment * pointers_per_alignment;
      end = g.first + g.count;
    }
    members_.assign(static_cast<std::size_t>(end), -1);
    fill_count_.assign(shapes_.size(), 0);
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      if (!slots_[s].matrix) continue;
      const auto g = static_cast<std::size_t>(slots_[s].group);
      members_[static_cast<std::size_t>(group_entries_[g].first + fill_count_[g]++)] = static_cast<int>(s);
    }
  }

  template <class G, class B>
  void size_regions(std::span<const block_task> tasks) {
    using gemm = gemm_plan<G, B>;
    using accumulator = typename gemm::accumulator;
    using E = typename gemm::gemm_type;
    built_bases_ = gemm::build_basis ? members_.size() : 0;
    offset_allocator l;
    offsets_.reduce = l.add<reduce_entry>(reduce_.size());
    offsets_.slots = l.add<slot_entry>(slots_.size());
    offsets_.bases = l.add<basis_entry>(built_bases_);
    offsets_.groups = l.add<group_entry>(group_entries_.size());
    offsets_.member_slot = l.add<int>(members_.size());
    offsets_.member_basis = l.add<const void*>(members_.size());
    offsets_.member_update = l.add<const void*>(members_.size());
    offsets_.member_target = l.add<void*>(members_.size());
    offsets_.member_coefficients = l.add<void*>(members_.size());
    offsets_.member_measures = l.add<void*>(members_.size());
    offsets_.blob = l.size();

    // Packed: every task's k x cols coefficients in task order, then one |x|^2 per task.
    index_t packed = 0;
    packed_at_.clear();
    for (const block_task& t : tasks) {
      packed_at_.push_back(packed);
      packed += t.k * t.target.cols;
    }
    const index_t norms = packed;
    if (diagnostics_) packed += static_cast<index_t>(tasks.size());
    index_t partials = 0, products = 0, work = 0, update = 0, basis = 0;
    reduce_values_ = 0;
    for (reduce_entry& e : reduce_) {
      e.partials = partials;
      partials += e.values * e.chunks;
      e.first_value = reduce_values_;
      reduce_values_ += e.values;
    }
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      slot_entry& e = slots_[s];
      e.packed = packed_at_[slot_task_[s]];
      e.norm = diagnostics_ ? norms + static_cast<index_t>(slot_task_[s]) : -1;
      e.work = work;
      work += 2 * e.k * e.cols;
      if (!e.matrix) continue;
      e.update = update;
      update += gemm_aligned<E>(gemm::terms * e.k * e.cols);
      e.products = products;
      products += gemm_aligned<accumulator>(gemm::basis_parts * e.k * e.cols);
    }
    for (int s : members_) {
      basis_offset_.push_back(basis);
      if (s < 0 || !gemm::build_basis) continue;
      const block_task& t = tasks[slot_task_[static_cast<std::size_t>(s)]];
      basis += gemm_aligned<E>(t.target.rows * gemm::terms * t.k);
    }
    offsets_.packed_count = static_cast<std::size_t>(packed);
    offsets_.packed = l.add<accumulator>(offsets_.packed_count);
    offsets_.measures = l.add<accumulator>(diagnostics_ ? offsets_.packed_count : 0);
    offsets_.partials = l.add<accumulator>(static_cast<std::size_t>(partials));
    offsets_.products = l.add<accumulator>(static_cast<std::size_t>(products));
    offsets_.work = l.add<accumulator>(static_cast<std::size_t>(work));
    offsets_.rule_partials = l.add<double>(static_cast<std::size_t>(column_chunks_) * rule_sums);
    offsets_.update_operand = l.add<E>(static_cast<std::size_t>(update));
    offsets_.basis_operand = l.add<E>(static_cast<std::size_t>(basis));
    offsets_.scales = l.add<accumulator>(slots_.size());
    offsets_.compact_basis = l.add<const void*>(members_.size());
    offsets_.compact_update = l.add<const void*>(members_.size());
    offsets_.compact_target = l.add<void*>(members_.size());
    offsets_.scalars = l.add<typename gemm::cublas_accumulator>(shapes_.empty() ? 0 : shapes_.size() + 1);
    offsets_.records = l.add<projection_record>(slots_.size());
    offsets_.flags = offsets_.records + slots_.size() * sizeof(projection_record);  // adjacent
    offsets_.exponents = (offsets_.flags + slots_.size() + sizeof(int) - 1) / sizeof(int) * sizeof(int);
    offsets_.total = offset_allocator::round_up(offsets_.exponents + shapes_.size() * sizeof(int));
  }

  std::size_t tasks_ = 0;
  bool diagnostics_ = false;
  std::size_t accumulator_bytes_ = 0;
  int width_ = 1;
  index_t chunk_ = 1;
  std::vector<reduce_entry> reduce_;
  std::vector<slot_entry> slots_;
  std::vector<std::size_t> slot_task_;
  std::vector<gemm_shape> shapes_;
  std::vector<group_entry> group_entries_;
  std::vector<int> members_, fill_count_;
  std::vector<index_t> basis_offset_, packed_at_;
  index_t total_chunks_ = 0, flat_chunks_ = 0, column_chunks_ = 0, reduce_values_ = 0;
  std::size_t flat_entries_ = 0, built_bases_ = 0, matrix_blocks_ = 0;
  workspace_offsets offsets_;
};

}  // namespace ogpsa::cuda::detail
