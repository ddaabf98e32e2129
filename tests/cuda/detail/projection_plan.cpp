#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/cuda/detail/projection_plan.hpp>

#include "support.hpp"

using namespace ogpsa::cuda::detail;
using ogpsa::bfloat16;
using ogpsa::float16;
using ogpsa::index_t;
namespace t = ogpsa::test;

namespace {

// Stand-ins for device memory: the plan records addresses and never dereferences them.
alignas(256) float gradients[1 << 16];
alignas(256) float bases[1 << 16];

block_task flat_task(float* x, index_t d, const float* u, index_t k) {
  return block_task{u, d, k, device_ref<void>{x, d, 1, 1, d}};
}

block_task matrix_task(float* x, index_t rows, index_t cols, const float* u, index_t k, bool row_major = false) {
  const device_ref<void> target = row_major ? device_ref<void>{x, rows, cols, cols, 1}
                                            : device_ref<void>{x, rows, cols, 1, rows};
  return block_task{u, rows, k, target};
}

/// A plan built for `tasks`, with its descriptors filled as for a workspace at `device`.
struct filled_plan {
  projection_plan plan;
  std::vector<std::byte> blob;
  std::byte* device = reinterpret_cast<std::byte*>(std::uintptr_t{1} << 40);

  /// The descriptors at `offset` of the blob (one of the workspace's regions).
  template <class T>
  const T* at(std::size_t offset) const { return reinterpret_cast<const T*>(blob.data() + offset); }
};

template <class G, class B>
filled_plan fill_plan(const std::vector<block_task>& tasks, bool diagnostics) {
  filled_plan f;
  f.plan.build<G, B>(tasks, diagnostics, "test");
  f.blob.resize(f.plan.offsets().blob);
  f.plan.fill<G, B>(f.blob.data(), f.device, tasks);
  return f;
}

}  // namespace

TEST_CASE("blocks are classified as flat or matrix-side, and empty ones get no slot") {
  const std::vector<block_task> tasks{flat_task(gradients, 1000, bases, 2), flat_task(gradients, 0, bases, 2),
                                      matrix_task(gradients, 40, 30, bases, 3), flat_task(gradients, 50, bases, 0)};
  projection_plan plan;
  plan.build<float, float>(tasks, false, "test");
  REQUIRE(plan.slots() == 2);
  CHECK(plan.task_of(0) == 0);
  CHECK(plan.task_of(1) == 2);
  CHECK(plan.slot_entries()[0].matrix == 0);
  CHECK(plan.slot_entries()[1].matrix == 1);
  CHECK(plan.slot_entries()[1].cols == 30);
  CHECK(plan.reduce().size() == 1);  // no norm entry for the matrix block without diagnostics
  CHECK(plan.groups().size() == 1);
}

TEST_CASE("flat work is split into chunks, flat entries first, norm-only entries after") {
  constexpr index_t chunk = chunk_elements<float, float>;
  const std::vector<block_task> tasks{matrix_task(gradients, 64, 16, bases, 4), flat_task(gradients, 3 * chunk + 5, bases, 9),
                                      flat_task(gradients, 7, bases, 1)};
  projection_plan plan;
  plan.build<float, float>(tasks, true, "test");
  REQUIRE(plan.reduce().size() == 3);
  const auto& r = plan.reduce();
  CHECK(r[0].slot == 1);  // flat blocks, in slot order
  CHECK(r[0].chunks == 4);
  CHECK(r[0].first_chunk == 0);
  CHECK(r[0].values == 10);  // nine coefficients and |x|^2
  CHECK(r[1].slot == 2);
  CHECK(r[1].first_chunk == 4);
  CHECK(r[2].slot == 0);  // the matrix block's |x|^2
  CHECK(r[2].k == 0);
  CHECK(r[2].u == nullptr);
  CHECK(r[2].values == 1);
  CHECK(plan.flat_entries() == 2);
  CHECK(plan.flat_chunks() == 5);
  CHECK(plan.total_chunks() == 6);
  CHECK(r[1].partials == r[0].partials + 10 * 4);
  // One block per value adds its chunk sums: the values of all entries, in entry order.
  CHECK(r[0].first_value == 0);
  CHECK(r[1].first_value == 10);
  CHECK(r[2].first_value == 12);
  CHECK(plan.reduce_values() == 13);
  CHECK(plan.slot_entries()[0].reduce == 2);
  CHECK(plan.slot_entries()[0].norm == 4 * 16 + 9 + 1);  // the norms follow all coefficients
}

TEST_CASE("rules and flags work by chunks of columns, so wide blocks spread over the device") {
  const std::vector<block_task> tasks{matrix_task(gradients, 16, 600, bases, 2), flat_task(gradients, 10, bases, 1),
                                      matrix_task(gradients, 16, 256, bases, 2)};
  projection_plan plan;
  plan.build<float, float>(tasks, false, "test");
  static_assert(column_chunk == 256);
  const auto& s = plan.slot_entries();
  CHECK(s[0].column_chunks == 3);
  CHECK(s[1].first_column_chunk == 3);
  CHECK(s[1].column_chunks == 1);
  CHECK(s[2].first_column_chunk == 4);
  CHECK(s[2].column_chunks == 1);
  CHECK(plan.column_chunks() == 5);
  CHECK(plan.offsets().rule_partials + 5 * rule_sums * sizeof(double) <= plan.offsets().update_operand);
}

TEST_CASE("packet loads are used only when addresses, lengths and leading dimensions allow them") {
  constexpr int width = packet_width<float, float>;
  static_assert(width == 4 && packet_width<bfloat16, bfloat16> == 8 && packet_width<bfloat16, float> == 4 &&
                packet_width<double, float> == 2);
  const std::vector<block_task> tasks{flat_task(gradients, 1024, bases, 2), flat_task(gradients + 1, 1024, bases, 2),
                                      flat_task(gradients, 1022, bases, 2), flat_task(gradients, 1024, bases + 2, 2)};
  projection_plan plan;
  plan.build<float, float>(tasks, false, "test");
  REQUIRE(plan.reduce().size() == 4);
  CHECK(plan.reduce()[0].packets == 1);
  CHECK(plan.reduce()[1].packets == 0);  // misaligned gradient
  CHECK(plan.reduce()[2].packets == 0);  // length (and leading dimension) not a multiple of 4
  CHECK(plan.reduce()[3].packets == 0);  // misaligned basis
  // Only the misaligned gradient keeps packet loads in the reduction, shifted across lanes.
  CHECK(plan.reduce()[0].shift == 0);
  CHECK(plan.reduce()[1].shift == 1);
  CHECK(plan.reduce()[2].shift == 0);
  CHECK(plan.reduce()[3].shift == 0);
}

// Gradients inside a flat buffer (ZeRO, FSDP) start wherever the tensors before them end.
TEST_CASE("a gradient off the packet boundary is shifted by its offset in elements, whatever its type") {
  const std::vector<block_task> floats{flat_task(gradients + 3, 1024, bases, 2)};
  projection_plan plan;
  plan.build<float, float>(floats, false, "test");
  CHECK(plan.reduce()[0].packets == 0);
  CHECK(plan.reduce()[0].shift == 3);
  auto* halves = reinterpret_cast<bfloat16*>(gradients);  // addresses only, never dereferenced
  const std::vector<block_task> narrow{flat_task(reinterpret_cast<float*>(halves + 5), 1024, bases, 2),
                                       flat_task(reinterpret_cast<float*>(halves + 8), 1024, bases, 2)};
  plan.build<bfloat16, bfloat16>(narrow, false, "test");
  CHECK(plan.reduce()[0].shift == 5);  // 8 bf16 per packet
  CHECK(plan.reduce()[1].packets == 1);
  CHECK(plan.reduce()[1].shift == 0);
}

TEST_CASE("matrix-side blocks are grouped by shape and layout, members contiguous per group") {
  const std::vector<block_task> tasks{matrix_task(gradients, 64, 32, bases, 8), matrix_task(gradients, 32, 64, bases, 8),
                                      flat_task(gradients, 10, bases, 1), matrix_task(gradients, 64, 32, bases, 8),
                                      matrix_task(gradients, 64, 32, bases, 8, true), matrix_task(gradients, 64, 32, bases, 4)};
  projection_plan plan;
  plan.build<float, float>(tasks, false, "test");
  REQUIRE(plan.groups().size() == 4);
  CHECK(plan.group_entries()[0].count == 2);
  CHECK(plan.group_entries()[1].first == 2);
  CHECK(plan.group_entries()[2].first == 4);  // groups start at even positions: -1 pads between them
  CHECK(plan.members() == std::vector<int>{0, 3, 1, -1, 4, -1, 5});
  CHECK(plan.matrix_blocks() == 5);
  CHECK(plan.slot_entries()[1].group == 1);  // what each block's coefficient scale is kept by
  CHECK(plan.slot_entries()[3].group == 0);
  CHECK(plan.slot_entries()[2].group == -1);  // the flat block
  CHECK(plan.groups()[2].row_major);
  CHECK(plan.groups()[2].ld == 32);
  CHECK(plan.groups()[3].k == 4);
}

TEST_CASE("matrix-side products: exact operands stay whole, others are split") {
  using f = gemm_plan<float, float>;
  static_assert(f::supported && f::basis_parts == 1 && f::coefficient_parts == 1 && f::terms == 1 && !f::build_basis);
  using bf = gemm_plan<bfloat16, float>;  // the default storage of bf16 gradients
  static_assert(bf::supported && bf::basis_parts == 2 && bf::coefficient_parts == 2 && bf::terms == 3 && bf::build_basis);
  static_assert(bf::basis_part(0) == 0 && bf::basis_part(1) == 1 && bf::basis_part(2) == 0);
  static_assert(bf::coefficient_part(0) == 0 && bf::coefficient_part(1) == 0 && bf::coefficient_part(2) == 1);
  using bb = gemm_plan<bfloat16, bfloat16>;
  static_assert(bb::basis_parts == 1 && bb::coefficient_parts == 2 && bb::terms == 2 && bb::build_basis);
  static_assert(bb::coefficient_part(1) == 1);
  using fb = gemm_plan<float, bfloat16>;  // a bf16 basis converts exactly to float
  static_assert(fb::basis_parts == 1 && fb::terms == 1 && fb::build_basis);
  static_assert(gemm_plan<double, float>::basis_parts == 1 && gemm_plan<double, float>::supported);
  static_assert(!gemm_plan<float, double>::supported && !gemm_plan<bfloat16, double>::supported);
  static_assert(gemm_plan<float16, bfloat16>::basis_parts == 2);
  using h = gemm_plan<float16, float>;
  static_assert(h::scaled_coefficients && !bf::scaled_coefficients && !f::scaled_coefficients);
  CHECK(h::coefficient_scale(h::biased_exponent(1.0f)) == 0x1p13f);  // 1 = 0.5 * 2^1 lands on 2^13
  CHECK(h::coefficient_scale(h::biased_exponent(3e6f)) * 3e6f < 0x1p14f);
  CHECK(h::coefficient_scale(h::biased_exponent(3e6f)) * 3e6f >= 0x1p13f);
  CHECK(h::biased_exponent(0.0f) == 0);  // no finite nonzero coefficient: no scale
  CHECK(h::biased_exponent(std::numeric_limits<float>::infinity()) == 0);
  CHECK(h::biased_exponent(std::numeric_limits<float>::quiet_NaN()) == 0);
  CHECK(h::coefficient_scale(0) == 1.0f);
  CHECK(bf::coefficient_scale(bf::biased_exponent(1e-6f)) == 1.0f);  // bf16 has float's range
}

TEST_CASE("a double basis with float gradients is refused on matrix-side blocks only") {
  alignas(256) static double wide[64];
  const std::vector<block_task> flat{block_task{wide, 64, 1, device_ref<void>{gradients, 64, 1, 1, 64}}};
  projection_plan plan;
  CHECK_NOTHROW(plan.build<float, double>(flat, false, "test"));
  const std::vector<block_task> matrix{block_task{wide, 8, 1, device_ref<void>{gradients, 8, 8, 1, 8}}};
  t::check_throws_with<ogpsa::invalid_argument>([&] { plan.build<float, double>(matrix, false, "where"); },
                                                {"where(): block 0 is matrix-side (8 x 8)", "float gradients in double"});
}

TEST_CASE("bad tasks are clear errors") {
  projection_plan plan;
  const std::vector<block_task> rows{block_task{bases, 10, 2, device_ref<void>{gradients, 12, 1, 1, 12}}};
  t::check_throws_with<ogpsa::shape_error>([&] { plan.build<float, float>(rows, false, "where"); },
                                           {"where(): block 0: the basis has 10 rows, the target 12"});
  const std::vector<block_task> null{block_task{nullptr, 12, 2, device_ref<void>{gradients, 12, 1, 1, 12}}};
  t::check_throws_with<ogpsa::invalid_argument>([&] { plan.build<float, float>(null, false, "where"); },
                                                {"block 0 has a null basis"});
}

TEST_CASE("regions are aligned and disjoint, and results are flags alone without diagnostics") {
  const std::vector<block_task> tasks{flat_task(gradients, 5000, bases, 3), matrix_task(gradients, 64, 32, bases, 8),
                                      matrix_task(gradients, 64, 32, bases, 8)};
  for (bool diagnostics : {false, true}) {
    projection_plan plan;
    plan.build<bfloat16, float>(tasks, diagnostics, "test");
    const workspace_offsets& l = plan.offsets();
    const std::vector<std::size_t> starts{l.reduce, l.slots, l.bases, l.groups, l.member_slot, l.member_basis,
                                          l.member_update, l.member_target, l.member_coefficients,
                                          l.member_measures, l.packed, l.measures, l.partials, l.products, l.work, l.update_operand, l.basis_operand, l.scales,
                                          l.compact_basis, l.compact_update, l.compact_target, l.scalars, l.records};
    for (std::size_t i = 0; i < starts.size(); ++i) {
      CHECK(starts[i] % 256 == 0);
      if (i > 0) CHECK(starts[i] >= starts[i - 1]);
    }
    CHECK(l.blob == l.packed);  // the descriptors come first, and only they are uploaded
    CHECK(l.packed_count == 3 + 2 * 8 * 32 + (diagnostics ? 3 : 0));
    // The measures after the update, in the packed order: with diagnostics only.
    CHECK(l.measures == l.packed + offset_allocator::round_up(l.packed_count * sizeof(float)));
    CHECK(l.partials == l.measures + (diagnostics ? offset_allocator::round_up(l.packed_count * sizeof(float)) : 0));
    // The one batched GEMM call's alpha and beta, when the device reads them.
    CHECK(l.records >= l.scalars + 2 * sizeof(float));
    CHECK(l.flags == l.records + 3 * sizeof(projection_record));
    CHECK(l.total >= l.flags + 3);
    // Then the largest coefficient exponent of the one batched GEMM call, int-aligned.
    CHECK(l.exponents == l.flags + 4);
    CHECK(plan.result_bytes() == (diagnostics ? 3 * sizeof(projection_record) : 0) + 4 + sizeof(int));
    // bf16 gradients with a float basis: [U_hi U_lo U_hi] per member (rows x 3k), GEMM halves 2k x cols
    CHECK(plan.built_bases() == 2);
    CHECK(l.products + 2 * 2 * 8 * 32 * sizeof(float) <= l.work);
    CHECK(l.update_operand + 2 * 3 * 8 * 32 * sizeof(bfloat16) <= l.basis_operand);
    CHECK(l.basis_operand + 2 * 64 * 3 * 8 * sizeof(bfloat16) <= l.scales);
  }
}

TEST_CASE("packed coefficients follow task order, empty tasks included, then one norm per task") {
  const std::vector<block_task> tasks{matrix_task(gradients, 64, 32, bases, 8), flat_task(gradients, 0, bases, 4),
                                      flat_task(gradients, 100, bases, 2), flat_task(gradients, 9, bases, 0)};
  projection_plan plan;
  plan.build<float, float>(tasks, true, "test");
  REQUIRE(plan.slots() == 3);  // the empty basis gets a slot for its norm
  CHECK(plan.slot_entries()[0].packed == 0);
  CHECK(plan.slot_entries()[1].packed == 8 * 32 + 4);  // after the empty block's four zeros
  CHECK(plan.offsets().packed_count == 8 * 32 + 4 + 2 + 4);
  CHECK(plan.slot_entries()[0].norm == 8 * 32 + 4 + 2 + 0);
  CHECK(plan.slot_entries()[1].norm == 8 * 32 + 4 + 2 + 2);
  CHECK(plan.slot_entries()[2].norm == 8 * 32 + 4 + 2 + 3);
  CHECK(plan.slot_entries()[0].products == 0);  // GEMMs write to aligned scratch, then get packed
  CHECK(plan.slot_entries()[0].parts == 1);     // a whole float basis: one product
  CHECK(plan.tasks() == 4);
  CHECK(plan.accumulator_bytes() == sizeof(float));
}

TEST_CASE("descriptors point into the workspace at each block's offsets") {
  const std::vector<block_task> tasks{matrix_task(gradients, 64, 32, bases, 8), flat_task(gradients, 100, bases, 2),
                                      matrix_task(gradients + 4096, 64, 32, bases, 8)};
  const filled_plan f = fill_plan<bfloat16, float>(tasks, false);
  const projection_plan& plan = f.plan;
  const workspace_offsets& l = plan.offsets();
  const auto& blob = f.blob;
  std::byte* device = f.device;
  const auto* members = reinterpret_cast<const int*>(blob.data() + l.member_slot);
  const auto* coefficients = reinterpret_cast<void* const*>(blob.data() + l.member_coefficients);
  const auto* measures = reinterpret_cast<void* const*>(blob.data() + l.member_measures);
  const auto* targets = reinterpret_cast<void* const*>(blob.data() + l.member_target);
  const auto* built = reinterpret_cast<const basis_entry*>(blob.data() + l.bases);
  CHECK(members[0] == 0);
  CHECK(members[1] == 2);
  CHECK(targets[1] == gradients + 4096);
  const slot_entry& third = plan.slot_entries()[2];
  CHECK(third.products == 2 * 8 * 32);  // a split basis: the GEMM's two halves go to scratch
  CHECK(third.parts == 2);
  CHECK(coefficients[1] == reinterpret_cast<float*>(device + l.products) + third.products);
  CHECK(measures[1] == coefficients[1]);  // measured through the same scratch
  CHECK(third.work == 2 * 8 * 32 + 2 * 2);
  CHECK(third.packed == 8 * 32 + 2);
  CHECK(built[1].operand == reinterpret_cast<bfloat16*>(device + l.basis_operand) + 64 * 3 * 8);
  CHECK(built[1].rows == 64);
  CHECK(built[1].k == 8);
}

TEST_CASE("with diagnostics, an empty basis gets a reduction of its norm alone, whatever the target's shape") {
  const std::vector<block_task> tasks{flat_task(gradients, 100, bases, 0), matrix_task(gradients, 64, 32, bases, 0),
                                      matrix_task(gradients, 64, 32, bases, 8)};
  projection_plan plan;
  plan.build<float, float>(tasks, false, "test");
  CHECK(plan.slots() == 1);
  plan.build<float, float>(tasks, true, "test");
  REQUIRE(plan.slots() == 3);
  const auto& s = plan.slot_entries();
  CHECK(s[0].matrix == 0);
  CHECK(s[1].matrix == 0);  // no GEMM for a basis of no columns
  CHECK(s[2].matrix == 1);
  CHECK(plan.groups().size() == 1);
  REQUIRE(plan.reduce().size() == 3);
  CHECK(plan.reduce()[static_cast<std::size_t>(s[1].reduce)].k == 0);
  CHECK(plan.reduce()[static_cast<std::size_t>(s[1].reduce)].values == 1);
  CHECK(plan.reduce()[static_cast<std::size_t>(s[1].reduce)].inner * plan.reduce()[static_cast<std::size_t>(s[1].reduce)].outer == 64 * 32);
}

TEST_CASE("the measures' GEMMs write through the coefficients' scratch, which is then packed into the measures") {
  const std::vector<block_task> tasks{flat_task(gradients, 100, bases, 2), matrix_task(gradients, 64, 32, bases, 8)};
  const filled_plan f = fill_plan<float, float>(tasks, true);
  const projection_plan& plan = f.plan;
  const workspace_offsets& l = plan.offsets();
  const auto& blob = f.blob;
  std::byte* device = f.device;
  const auto* coefficients = reinterpret_cast<void* const*>(blob.data() + l.member_coefficients);
  const auto* measures = reinterpret_cast<void* const*>(blob.data() + l.member_measures);
  const slot_entry& matrix = plan.slot_entries()[1];
  CHECK(matrix.products == 0);
  CHECK(coefficients[0] == reinterpret_cast<float*>(device + l.products));
  CHECK(measures[0] == coefficients[0]);  // measured through the same scratch, packed into the measures
}

namespace {

constexpr std::uintptr_t gemm_alignment = 16;  // what tensor-core and TF32 batched GEMMs need

bool aligned_to_gemm(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % gemm_alignment == 0; }

// A model as trainers have them: flat blocks of k = 1..3 (norms, biases) ahead of matrix blocks of
// odd column counts, two of them sharing a shape so that a group has several members.
std::vector<block_task> mixed_model() {
  std::vector<block_task> tasks;
  float* x = gradients;
  for (index_t k = 1; k <= 3; ++k) tasks.push_back(flat_task(x += 512, 37 * k, bases, k));
  tasks.push_back(matrix_task(x += 512, 48, 33, bases, 3));
  tasks.push_back(flat_task(x += 512, 10, bases, 1));
  tasks.push_back(matrix_task(x += 4096, 40, 7, bases, 2, true));
  tasks.push_back(matrix_task(x += 4096, 48, 33, bases, 3));
  tasks.push_back(matrix_task(x += 4096, 24, 5, bases, 1));
  tasks.push_back(matrix_task(x += 4096, 48, 33, bases, 3));
  return tasks;
}

// Every address a batched GEMM reads or writes in the workspace, and every pointer array it is
// handed, is 16-byte aligned, whatever the blocks before it.
template <class G, class B>
void check_gemm_alignment(bool diagnostics) {
  CAPTURE(diagnostics);
  const filled_plan f = fill_plan<G, B>(mixed_model(), diagnostics);
  const projection_plan& plan = f.plan;
  const workspace_offsets& l = plan.offsets();
  std::byte* device = f.device;
  REQUIRE(plan.groups().size() == 3);
  for (const std::size_t array : {l.member_basis, l.member_update, l.member_target, l.member_coefficients,
                                  l.member_measures, l.compact_basis, l.compact_update, l.compact_target})
    for (const group_entry& g : plan.group_entries()) {
      CAPTURE(g.first);
      CHECK(aligned_to_gemm(device + array + static_cast<std::size_t>(g.first) * sizeof(void*)));
    }
  const auto* members = f.at<int>(l.member_slot);
  for (const std::size_t array : {l.member_basis, l.member_update, l.member_coefficients, l.member_measures}) {
    const auto* pointers = f.at<void*>(array);
    for (const group_entry& g : plan.group_entries())
      for (int m = g.first; m < g.first + g.count; ++m) {
        CAPTURE(m);
        CAPTURE(members[m]);
        CHECK(aligned_to_gemm(pointers[m]));
      }
  }
  const auto* built = f.at<basis_entry>(l.bases);
  for (std::size_t b = 0; b < plan.built_bases(); ++b) CHECK(aligned_to_gemm(built[b].operand));
}

}  // namespace

TEST_CASE_TEMPLATE("batched GEMM operands and pointer arrays are 16-byte aligned after blocks of any size", pair,
                   std::pair<float, float>, std::pair<float, bfloat16>, std::pair<float, float16>,
                   std::pair<bfloat16, float>, std::pair<bfloat16, bfloat16>, std::pair<float16, float>,
                   std::pair<float16, float16>, std::pair<float16, bfloat16>, std::pair<double, double>,
                   std::pair<double, float>) {
  using G = typename pair::first_type;
  using B = typename pair::second_type;
  for (const bool diagnostics : {false, true}) check_gemm_alignment<G, B>(diagnostics);
}

namespace {

// |(hi + lo) / scale - c| / |c| for c split into two fp16 parts after scaling by `scale`, the way
// the update operand of fp16 gradients carries its coefficients.
double split_error(float c, float scale) {
  const float v = c * scale;
  const auto hi = static_cast<double>(static_cast<float>(split_part<float16>(v, 0)));
  const auto lo = static_cast<double>(static_cast<float>(split_part<float16>(v, 1)));
  return std::abs((hi + lo) / scale - static_cast<double>(c)) / std::abs(static_cast<double>(c));
}

}  // namespace

TEST_CASE("fp16 coefficients keep about 22 bits through the split, from 1e-8 to 1e4") {
  using fp16 = gemm_plan<float16, float>;
  static_assert(fp16::coefficient_parts == 2);
  for (double magnitude = 1e-8; magnitude <= 1e4; magnitude *= 1.37)
    for (const double sign : {1.0, -1.0})
      for (const double below_largest : {1.0, 0x1p-8}) {  // the largest coefficient sets the scale
        const auto c = static_cast<float>(sign * magnitude);
        CAPTURE(c);
        CAPTURE(below_largest);
        const auto largest = static_cast<float>(magnitude / below_largest);
        CHECK(split_error(c, fp16::coefficient_scale(fp16::biased_exponent(largest))) <= 0x1p-21);
      }
}
