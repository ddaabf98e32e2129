#pragma once
/// \file
/// Runs a many-block projection in its two phases, each a constant number of launches:
///
/// - coefficients: the plan of `ws.tasks`, its descriptors uploaded in one copy, then the
///   matrix-side basis operands, the flat reduction, the coefficient GEMMs and the packing, all
///   in stream order with no wait for the host. The packed coefficients may be all-reduced next.
/// - update: the rule and flags kernels and the update operands (zero for the blocks not to be
///   changed), then one of two endings.
///   - The stats are read (flags or diagnostics): the matrix-side blocks to update are compacted
///     to the front of their GEMM calls, one small copy brings the per-block flags (plus the
///     diagnostics records when asked for) and each call's coefficient scale to the host, the
///     flat update runs meanwhile, and the host waits for that copy only, then issues the update
///     GEMMs for the blocks that changed, with the scale of their coefficients. With diagnostics
///     it then measures what was written (the reduction, GEMMs and packing of the coefficients
///     once more, into the measures) and waits for the records.
///   - Nothing is read: every member of every GEMM call is updated, those not to be changed with
///     their zero operand, the calls' alphas computed on the device from the scales (cuBLAS's
///     device pointer mode); nothing comes back and the call returns with all of it in flight.
///     Such a block is written x + 0 rather than left alone: every finite value keeps its bits
///     except that -0 may come back +0 (cuBLAS does not say how it adds a zero product), and a
///     NaN comes back as the device's canonical NaN.
///
/// The first ending is a round trip through the host: it blocks until everything queued before
/// the projection on its stream (in a trainer: the whole backward pass) has run, so the host
/// cannot queue the optimizer step and the next forward ahead of the device, and the device
/// idles while the host launches the update GEMMs. That costs a launch latency per step (tens of
/// microseconds, not yet measured on a GPU); it matters for small models whose steps take a few
/// milliseconds. The second ending avoids it for a projector whose callers read no stats.
///
/// Without that wait, a call can be issued while the previous one is still queued, so the
/// workspace orders its reuse: the host waits for the previous call's descriptor upload before it
/// rewrites the staging copy (the host runs at most one call ahead of the device there), and a
/// call on another stream than the previous one waits on the device for the previous one's end.

#include <algorithm>
#include <cstdint>

#include <cuda_runtime.h>

#include "ogpsa/cuda/detail/blas.hpp"
#include "ogpsa/cuda/detail/launch.hpp"
#include "ogpsa/cuda/detail/projection_kernels.cuh"
#include "ogpsa/cuda/detail/projection_plan.hpp"
#include "ogpsa/cuda/error.hpp"
#include "ogpsa/cuda/execution.hpp"
#include "ogpsa/cuda/workspace.hpp"

namespace ogpsa::cuda::detail {

/// The device-side addresses of a plan's regions in the workspace.
template <class G, class B>
struct plan_regions {
  using gemm = gemm_plan<G, B>;
  using Acc = typename gemm::accumulator;
  using E = typename gemm::gemm_type;
  using scalar = typename gemm::cublas_accumulator;

  plan_regions(std::byte* base, const workspace_offsets& l)
      : reduce(reinterpret_cast<const reduce_entry*>(base + l.reduce)),
        slots(reinterpret_cast<const slot_entry*>(base + l.slots)),
        bases(reinterpret_cast<const basis_entry*>(base + l.bases)),
        groups(reinterpret_cast<const group_entry*>(base + l.groups)),
        member_slot(reinterpret_cast<const int*>(base + l.member_slot)),
        member_basis(reinterpret_cast<const void* const*>(base + l.member_basis)),
        member_update(reinterpret_cast<const void* const*>(base + l.member_update)),
        member_target(reinterpret_cast<void* const*>(base + l.member_target)),
        member_coefficients(reinterpret_cast<void* const*>(base + l.member_coefficients)),
        member_measures(reinterpret_cast<void* const*>(base + l.member_measures)),
        packed(reinterpret_cast<Acc*>(base + l.packed)),
        measures(reinterpret_cast<Acc*>(base + l.measures)),
        partials(reinterpret_cast<Acc*>(base + l.partials)),
        products(reinterpret_cast<Acc*>(base + l.products)),
        work(reinterpret_cast<Acc*>(base + l.work)),
        rule_partials(reinterpret_cast<double*>(base + l.rule_partials)),
        update(reinterpret_cast<E*>(base + l.update_operand)),
        scales(reinterpret_cast<Acc*>(base + l.scales)),
        compact_basis(reinterpret_cast<const void**>(base + l.compact_basis)),
        compact_update(reinterpret_cast<const void**>(base + l.compact_update)),
        compact_target(reinterpret_cast<void**>(base + l.compact_target)),
        records(reinterpret_cast<projection_record*>(base + l.records)),
        flags(reinterpret_cast<std::uint8_t*>(base + l.flags)),
        exponents(reinterpret_cast<int*>(base + l.exponents)),
        scalars(reinterpret_cast<scalar*>(base + l.scalars)) {}

  const reduce_entry* reduce;
  const slot_entry* slots;
  const basis_entry* bases;
  const group_entry* groups;
  const int* member_slot;
  const void* const* member_basis;
  const void* const* member_update;
  void* const* member_target;
  void* const* member_coefficients;
  void* const* member_measures;
  Acc* packed;
  Acc* measures;
  Acc* partials;
  Acc* products;
  Acc* work;
  double* rule_partials;
  E* update;
  Acc* scales;
  const void** compact_basis;
  const void** compact_update;
  void** compact_target;
  projection_record* records;
  std::uint8_t* flags;
  int* exponents;
  scalar* scalars;  // each GEMM call's alpha, then beta = 1
};

/// U^T X (or [U_hi U_lo]^T X) for every member of every matrix-side shape, where `out` points
/// (the products' aligned scratch, which the packing kernel moves into place).
template <class G, class B>
void coefficient_gemms(execution& exec, const projection_plan& plan, const plan_regions<G, B>& r, void* const* out,
                       const char* where) {
  using gemm = gemm_plan<G, B>;
  using scalar = typename gemm::cublas_accumulator;
  using E = typename gemm::gemm_type;
  const scalar one = 1, zero = 0;
  for (std::size_t g = 0; g < plan.groups().size(); ++g) {
    const gemm_shape& sh = plan.groups()[g];
    const group_entry& members = plan.group_entries()[g];
    const auto first = static_cast<std::size_t>(members.first);
    const index_t height = gemm::basis_parts * sh.k;
    gemm_batched(exec, CUBLAS_OP_T, sh.row_major ? CUBLAS_OP_T : CUBLAS_OP_N, height, sh.cols, sh.rows, &one,
                 batched_operand{r.member_basis + first, data_type<E>(), sh.rows},
                 batched_operand{reinterpret_cast<const void* const*>(r.member_target + first), data_type<G>(), sh.ld},
                 &zero, out + first, data_type<typename gemm::accumulator>(), height, members.count,
                 compute_type<E>(exec.math()), where);
  }
}

/// The pointer arrays of one batched update GEMM call, from its first member on.
struct update_arrays {
  const void* const* basis;
  const void* const* update;
  void* const* target;
};

/// X <- X + alpha U R for `count` members of the call of shape `sh`, alpha and beta (= 1) read
/// where `scalars` says (the host, or device memory when the GEMM runs).
template <class G, class B>
void update_gemm(execution& exec, const gemm_shape& sh, const update_arrays& arrays, index_t count, const void* alpha,
                 const void* one, cublasPointerMode_t scalars, const char* where) {
  using gemm = gemm_plan<G, B>;
  using E = typename gemm::gemm_type;
  const index_t depth = gemm::terms * sh.k;
  const batched_operand basis{arrays.basis, data_type<E>(), sh.rows};
  const batched_operand coefficients{arrays.update, data_type<E>(), depth};
  const cublasComputeType_t compute = compute_type<E>(exec.math());
  if (sh.row_major)  // X^T (cols x rows) += alpha R^T U^T
    gemm_batched(exec, CUBLAS_OP_T, CUBLAS_OP_T, sh.cols, sh.rows, depth, alpha, coefficients, basis, one,
                 arrays.target, data_type<G>(), sh.ld, count, compute, where, scalars);
  else
    gemm_batched(exec, CUBLAS_OP_N, CUBLAS_OP_N, sh.rows, sh.cols, depth, alpha, basis, coefficients, one,
                 arrays.target, data_type<G>(), sh.ld, count, compute, where, scalars);
}

/// X <- X - U R for the members that changed (compacted to the front of each shape's arrays),
/// each call's alpha undoing the scale of its coefficients (`exponents`, host copies).
template <class G, class B>
void compacted_update_gemms(execution& exec, const projection_plan& plan, const plan_regions<G, B>& r,
                            const std::uint8_t* flags, const int* exponents, const char* where) {
  using gemm = gemm_plan<G, B>;
  using scalar = typename gemm::cublas_accumulator;
  const scalar one = 1;
  for (std::size_t g = 0; g < plan.groups().size(); ++g) {
    const group_entry& members = plan.group_entries()[g];
    index_t changed = 0;
    for (int m = members.first; m < members.first + members.count; ++m)
      changed += flags[plan.members()[static_cast<std::size_t>(m)]] == (flag_finite | flag_changed);
    const auto first = static_cast<std::size_t>(members.first);
    const scalar alpha = -1 / static_cast<scalar>(gemm::coefficient_scale(exponents[g]));
    update_gemm<G, B>(exec, plan.groups()[g], {r.compact_basis + first, r.compact_update + first, r.compact_target + first},
                      changed, &alpha, &one, CUBLAS_POINTER_MODE_HOST, where);
  }
}

/// X <- X - U R for every member (those not to be changed have a zero operand R), each call's
/// alpha read on the device from `r.scalars`, which `scalars_kernel` filled (and beta with it).
template <class G, class B>
void update_gemms_in_flight(execution& exec, const projection_plan& plan, const plan_regions<G, B>& r,
                            const char* where) {
  const auto* one = r.scalars + plan.groups().size();
  for (std::size_t g = 0; g < plan.groups().size(); ++g) {
    const group_entry& members = plan.group_entries()[g];
    const auto first = static_cast<std::size_t>(members.first);
    update_gemm<G, B>(exec, plan.groups()[g], {r.member_basis + first, r.member_update + first, r.member_target + first},
                      members.count, r.scalars + g, one, CUBLAS_POINTER_MODE_DEVICE, where);
  }
}

/// U^T x (and |x|^2 with diagnostics) of every block into `packed`: the flat reduction, the
/// matrix-side GEMMs writing where `gemm_out` points, and the packing.
template <class G, class B>
void reduce_and_pack(execution& exec, const projection_plan& plan, const plan_regions<G, B>& r, void* const* gemm_out,
                     typename plan_regions<G, B>::Acc* packed, const char* where) {
  const cudaStream_t stream = exec.stream();
  if (plan.total_chunks() > 0) {
    reduce_kernel<G, B, typename plan_regions<G, B>::Acc><<<static_cast<unsigned>(plan.total_chunks()), block_threads, 0, stream>>>(
        r.reduce, static_cast<int>(plan.reduce().size()), r.partials);
    check_launch(where, "ogpsa's projection reduction kernel");
  }
  coefficient_gemms(exec, plan, r, gemm_out, where);
  if (plan.reduce_values() > 0) {
    sum_partials_kernel<<<static_cast<unsigned>(plan.reduce_values()), block_threads, 0, stream>>>(
        r.reduce, static_cast<int>(plan.reduce().size()), r.slots, r.partials, packed);
    check_launch(where, "ogpsa's reduction sums kernel");
  }
  if (plan.groups().empty()) return;
  pack_kernel<<<static_cast<unsigned>(plan.column_chunks()), block_threads, 0, stream>>>(
      r.slots, static_cast<int>(plan.slots()), r.products, packed);
  check_launch(where, "ogpsa's coefficient packing kernel");
}

/// With diagnostics, after the update: the measures of every block as written, then each written
/// block's record completed from them and all records copied to the host (waited for).
template <class G, class B>
void measure_blocks(execution& exec, const projection_plan& plan, const plan_regions<G, B>& r, std::byte* results,
                    const char* where) {
  const cudaStream_t stream = exec.stream();
  reduce_and_pack(exec, plan, r, r.member_measures, r.measures, where);
  measure_kernel<<<static_cast<unsigned>(plan.slots()), block_threads, 0, stream>>>(r.slots, r.measures, r.flags,
                                                                                     r.records);
  check_launch(where, "ogpsa's projection measure kernel");
  OGPSA_CUDA_CHECK(where, cudaMemcpyAsync(results, r.records, plan.slots() * sizeof(projection_record),
                                          cudaMemcpyDeviceToHost, stream));
  OGPSA_CUDA_CHECK(where, cudaStreamSynchronize(stream));
}

/// Phase one over `ws.tasks`: plans, uploads, and leaves the packed coefficients on the stream.
template <class G, class B>
void coefficients_blocks(execution& exec, workspace& ws, bool diagnostics, const char* where) {
  projection_plan& plan = ws.plan;
  plan.build<G, B>(ws.tasks, diagnostics, where);
  const workspace_offsets& l = plan.offsets();
  constexpr index_t grid_limit = index_t{1} << 31;
  OGPSA_REQUIRE(plan.total_chunks() < grid_limit && plan.column_chunks() < grid_limit &&
                    plan.reduce_values() < grid_limit,
                invalid_argument, where,
                "too much work for one call: " << plan.total_chunks() << " chunks, " << plan.column_chunks()
                                               << " column chunks, " << plan.reduce_values() << " reduced values");
  ws.begin_call(exec.stream(), where);
  std::byte* device = ws.device(exec, l.total);
  std::byte* host = ws.host(l.blob + plan.result_bytes());
  const cudaStream_t stream = exec.stream();
  const plan_regions<G, B> r(device, l);
  // Tasks without a slot (empty blocks) keep zero coefficients, as an all-reduce expects.
  if (l.packed_count > 0)
    OGPSA_CUDA_CHECK(where, cudaMemsetAsync(r.packed, 0, l.packed_count * sizeof(typename plan_regions<G, B>::Acc), stream));
  if (plan.slots() == 0) return;
  plan.fill<G, B>(host, device, ws.tasks);
  OGPSA_CUDA_CHECK(where, cudaMemcpyAsync(device, host, l.blob, cudaMemcpyHostToDevice, stream));
  ws.mark_upload(stream, where);
  if (plan.built_bases() > 0) {
    const auto bases = static_cast<unsigned>(std::min<std::size_t>(plan.built_bases(), 65535));
    build_basis_kernel<G, B><<<dim3(128, bases), block_threads, 0, stream>>>(r.bases, static_cast<int>(plan.built_bases()));
    check_launch(where, "ogpsa's basis operand kernel");
  }
  reduce_and_pack(exec, plan, r, r.member_coefficients, r.packed, where);
}

/// The rule over the packed coefficients, each block's flags, and the matrix-side update operands.
template <class G, class B, class Rule>
void apply_rule(execution& exec, const projection_plan& plan, const plan_regions<G, B>& r, const Rule& rule,
                bool diagnostics, const char* where) {
  const cudaStream_t stream = exec.stream();
  if (!plan.groups().empty())
    OGPSA_CUDA_CHECK(where, cudaMemsetAsync(r.exponents, 0, plan.groups().size() * sizeof(int), stream));
  rule_kernel<G, B, Rule><<<static_cast<unsigned>(plan.column_chunks()), block_threads, 0, stream>>>(
      r.slots, static_cast<int>(plan.slots()), r.packed, r.work, r.exponents, r.scales, r.rule_partials, rule);
  check_launch(where, "ogpsa's projection rule kernel");
  flags_kernel<<<static_cast<unsigned>(plan.slots()), block_threads, 0, stream>>>(r.slots, r.packed, r.scales,
                                                                                    r.rule_partials, r.records, r.flags,
                                                                                    diagnostics);
  check_launch(where, "ogpsa's projection flags kernel");
  if (plan.groups().empty()) return;
  operand_kernel<G, B><<<static_cast<unsigned>(plan.column_chunks()), block_threads, 0, stream>>>(
      r.slots, static_cast<int>(plan.slots()), r.work, r.exponents, r.flags, r.update);
  check_launch(where, "ogpsa's update operand kernel");
}

/// x <- s x - U r over the flat blocks that changed.
template <class G, class B>
void update_flat(execution& exec, const projection_plan& plan, const plan_regions<G, B>& r, const char* where) {
  if (plan.flat_chunks() == 0) return;
  update_kernel<G, B><<<static_cast<unsigned>(plan.flat_chunks()), block_threads, 0, exec.stream()>>>(
      r.reduce, static_cast<int>(plan.flat_entries()), r.slots, r.work, r.scales, r.flags);
  check_launch(where, "ogpsa's projection update kernel");
}

/// The ending that reads the stats: compaction, the results copied to the host while the flat
/// update runs, a wait for that copy, the update GEMMs of the blocks that changed, and with
/// diagnostics the measures of what was written.
template <class G, class B>
const std::byte* update_and_report(execution& exec, workspace& ws, const plan_regions<G, B>& r, bool diagnostics,
                                   const char* where) {
  const projection_plan& plan = ws.plan;
  const workspace_offsets& l = plan.offsets();
  const cudaStream_t stream = exec.stream();
  std::byte* device = ws.device(exec, l.total);
  std::byte* results = ws.host(l.blob + plan.result_bytes()) + l.blob;
  if (!plan.groups().empty()) {
    compact_kernel<<<1, block_threads, 0, stream>>>(r.groups, static_cast<int>(plan.groups().size()), r.member_slot,
                                                    r.member_basis, r.member_update, r.member_target, r.flags,
                                                    r.compact_basis, r.compact_update, r.compact_target);
    check_launch(where, "ogpsa's GEMM compaction kernel");
  }
  OGPSA_CUDA_CHECK(where, cudaMemcpyAsync(results, device + plan.result_offset(), plan.result_bytes(),
                                          cudaMemcpyDeviceToHost, stream));
  OGPSA_CUDA_CHECK(where, cudaEventRecord(ws.results_event(), stream));
  update_flat(exec, plan, r, where);
  OGPSA_CUDA_CHECK(where, cudaEventSynchronize(ws.results_event()));
  const auto* flags = reinterpret_cast<const std::uint8_t*>(results + (l.flags - plan.result_offset()));
  const auto* exponents = reinterpret_cast<const int*>(results + (l.exponents - plan.result_offset()));
  compacted_update_gemms(exec, plan, r, flags, exponents, where);
  if (diagnostics) measure_blocks(exec, plan, r, results, where);
  ws.mark_call_end(stream, where);
  return results;
}

/// Phase two, after `coefficients_blocks` on the same tasks and workspace. With `wait` (the
/// caller reads the stats) returns the host copy of the results (records with diagnostics, then
/// one flag byte per slot); without, it leaves everything in flight and returns nullptr, as it
/// does when no block had work.
template <class G, class B, class Rule>
const std::byte* update_blocks(execution& exec, workspace& ws, const Rule& rule, bool diagnostics, bool wait,
                               const char* where) {
  const projection_plan& plan = ws.plan;
  OGPSA_REQUIRE(plan.tasks() == ws.tasks.size() && plan.diagnostics() == diagnostics &&
                    plan.accumulator_bytes() == sizeof(typename gemm_plan<G, B>::accumulator),
                state_error, where,
                "update_all() must follow coefficients_all() on the same " << ws.tasks.size()
                                                                           << " tasks, types and diagnostics setting");
  if (plan.slots() == 0) return nullptr;
  OGPSA_REQUIRE(plan.groups().empty() || !rule.scales_gradient(), invalid_argument, where,
                Rule::name << " in this mode scales whole gradients and applies to flat blocks only; "
                           << plan.matrix_blocks() << " blocks are matrix-side");
  const plan_regions<G, B> r(ws.device(exec, plan.offsets().total), plan.offsets());
  apply_rule(exec, plan, r, rule, diagnostics, where);
  if (!wait) {
    update_flat(exec, plan, r, where);
    if (!plan.groups().empty()) {
      scalars_kernel<G, B><<<1, block_threads, 0, exec.stream()>>>(r.exponents, static_cast<int>(plan.groups().size()),
                                                                   r.scalars);
      check_launch(where, "ogpsa's update scalars kernel");
      update_gemms_in_flight(exec, plan, r, where);
    }
    ws.mark_call_end(exec.stream(), where);
    return nullptr;
  }
  return update_and_report(exec, ws, r, diagnostics, where);
}

}  // namespace ogpsa::cuda::detail
