#pragma once
/// \file
/// The projector: per-block subspaces, reference passes, the refresh schedule and projection.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ogpsa/backend.hpp"
#include "ogpsa/callbacks.hpp"
#include "ogpsa/cpu/backend.hpp"
#include "ogpsa/detail/diagnostics.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/detail/rounds.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/estimator.hpp"
#include "ogpsa/estimators/mean_gradient.hpp"
#include "ogpsa/family.hpp"
#include "ogpsa/projector_state.hpp"
#include "ogpsa/reducer.hpp"
#include "ogpsa/rule.hpp"
#include "ogpsa/rules/orthogonal.hpp"
#include "ogpsa/schedule.hpp"
#include "ogpsa/sharding.hpp"
#include "ogpsa/storage.hpp"
#include "ogpsa/subspace.hpp"
#include "ogpsa/tensor_view.hpp"

namespace ogpsa {

/// Identifies a registered block; returned by `projector::add_block`.
struct block_id {
  std::size_t index = 0;
  friend bool operator==(block_id, block_id) = default;
};

/// Projects gradients of registered parameter blocks onto the orthogonal complement of their
/// capability subspaces (OGPSA, Sun et al., arXiv 2602.07892).
///
/// Use, per training run:
/// 1. `add_block(name, gradient_view, family)` for every parameter block. The view is the buffer
///    the optimizer steps with; the projector writes the projected gradient there, in place.
/// 2. Whenever `refresh_due()`: `begin_reference_pass()`, `feed(block, reference_gradient, set)`
///    for each reference batch and block (from buffers of your own: reference gradients never
///    touch the registered views) or `feed_columns(block, target_space_vectors, set)`, then
///    `finish_reference_pass()`. `auto pass = reference_pass();` ... `pass.finish()` does the
///    same as a scope, which abandons the pass if an exception leaves it unfinished.
/// 3. Each optimizer step, after gradient accumulation (and the data-parallel all-reduce) and
///    before clipping and `step()`: `project()`. One call to `project()` is one optimizer step
///    for the schedule.
///
/// Callbacks (`ogpsa/callbacks.hpp`) are passed to `project`, `project_blocks` and
/// `finish_reference_pass` as any objects, temporaries included: `p.project(logger{})`.
///
/// **Memory order.** A flat block's vector is its elements in memory order, so each block records
/// the strides it was registered with. `rebind` and `project(id, view)` write in place and need a
/// view in that order (a flat block; matrix-side blocks read and write through any strides).
/// `feed` re-lays out a reference matrix (two dimensions) of the other order into the block's
/// (one copy of the reference on the backend); a reference of three or more dimensions must be in
/// the block's order. Anything else is a `layout_error` naming both orders.
///
/// Projecting a block that has never been estimated throws `state_error` (an unprotected update
/// would be silently wrong). A block whose estimate came out empty (all its reference gradients
/// were zero) has rank 0 and is left unchanged, as in the published code.
///
/// **Distributed runs.** With a communicating `Reducer` (`ogpsa::torch::c10d_reducer`), one
/// projector per rank: replicated blocks (the default: DDP, gradients already all-reduced) cost
/// no communication; a block registered with `sharding::rows` / `columns` holds this rank's piece
/// of the gradient and of its basis, and the projection stays exact: the coefficients of every
/// block whose target rows are split are summed across ranks in one collective per `project()`
/// call, before the rule applies (see `ogpsa/sharding.hpp` and `ogpsa/reducer.hpp`).
///
/// \tparam Estimator  how a subspace is estimated (`mean_gradient`, `exact_svd`, ...)
/// \tparam Rule       what is removed (`orthogonal`, `soft`, `conflict_only`)
/// \tparam Schedule   when bases are refreshed (`every_n_steps`, `fixed_basis`)
/// \tparam Storage    element types and memory space (`storage<Gradient, Basis, Space>`)
/// \tparam Reducer    how sums cross ranks (`local_reducer`: one process)
template <subspace_estimator Estimator = mean_gradient, projection_rule Rule = orthogonal,
          refresh_schedule Schedule = every_n_steps, class Storage = storage<>,
          reducer Reducer = local_reducer>
class projector {
 public:
  using estimator_type = Estimator;
  using rule_type = Rule;
  using schedule_type = Schedule;
  using gradient_type = typename Storage::gradient;
  using basis_type = typename Storage::basis;
  using memory_space = typename Storage::memory_space;
  using backend_type = backend_for_t<memory_space>;
  using execution = typename backend_type::execution;
  using work_type = working_t<basis_type>;
  using subspace_type = subspace<basis_type, backend_type>;
  using state_type = projector_state<basis_type>;
  using reducer_type = Reducer;

  static_assert(backend<backend_type>, "the backend for this memory space is incomplete");
  static_assert(detail::warn_on_former_state<Estimator>());
  static_assert(
      estimator_pass_for<Estimator, backend_type, work_type>,
      "the estimator's per-block pass does not keep the estimator contract: pass<Backend, Work> "
      "must be constructible from (const Estimator&, index_t dimension, std::string block_name) and "
      "have feed(execution&, matrix_ref<const S, Space> columns, index_t set) and finish(execution&) "
      "returning subspace<Work, Backend> (see <ogpsa/estimator.hpp>)");

  /// \throws invalid_argument when a policy's hyper-parameters are invalid.
  explicit projector(Estimator estimator = {}, Rule rule = {}, Schedule schedule = {},
                     execution exec = {}, Reducer reducer = {})
      : estimator_(std::move(estimator)),
        rule_(std::move(rule)),
        schedule_(std::move(schedule)),
        exec_(std::move(exec)),
        reducer_(std::move(reducer)) {
    estimator_.validate();
    rule_.validate();
    schedule_.validate();
  }

  /// Registers a parameter block whose gradient lives in `gradient` (written in place). With
  /// `sharded_by` other than replicated, `gradient` is this rank's rows or columns of the block's
  /// gradient (a flat block: any piece of it), laid out as in `ogpsa/sharding.hpp`.
  /// The view's strides are the block's memory order (see the class description).
  /// \throws invalid_argument for a duplicate name, a family the policies do not support, or a
  ///         sharded block with a local reducer or an estimator that cannot estimate it;
  ///         layout_error / shape_error when the view cannot serve as that family.
  template <tensor_view View>
  block_id add_block(std::string name, View gradient, family kind = family::flat,
                     sharding sharded_by = sharding::replicated) {
    check_gradient_view<View>();
    constexpr const char* where = "ogpsa::projector::add_block";
    OGPSA_REQUIRE(!pass_, state_error, where,
                  "cannot add block '" << name << "' during a reference pass");
    OGPSA_REQUIRE(!find(name), invalid_argument, where, "duplicate block name '" << name << "'");
    OGPSA_REQUIRE(estimator_.supports(kind), invalid_argument, where,
                  Estimator::name << " does not support " << kind << " blocks (block '" << name
                                  << "')");
    OGPSA_REQUIRE(rule_.supports(kind), invalid_argument, where,
                  Rule::name << " supports " << detail::supported_families(rule_) << " only; block '" << name
                             << "' is " << kind);
    if (sharded_by != sharding::replicated) check_shardable(name, kind, sharded_by);
    block b{std::move(name), kind, sharded_by, detail::extents_of(gradient), detail::strides_of(gradient), {}, 0,
            std::nullopt};
    b.target = detail::target_columns(gradient, kind, where);
    b.dimension = detail::target_dimension(gradient, kind);
    blocks_.push_back(std::move(b));
    return block_id{blocks_.size() - 1};
  }

  /// Points a block at a new gradient buffer of the same extents (frameworks may reallocate).
  /// \throws shape_error for other extents; layout_error for a flat block's view in another
  ///         memory order than the registered one (the projection writes in place).
  template <tensor_view View>
  void rebind(block_id id, View gradient) {
    check_gradient_view<View>();
    constexpr const char* where = "ogpsa::projector::rebind";
    block& b = at(id, where);
    check_extents(b, gradient, where);
    check_written_order(b, gradient, where);
    b.target = detail::target_columns(gradient, b.kind, where);
  }

  std::optional<block_id> find(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      if (blocks_[i].name == name) return block_id{i};
    return std::nullopt;
  }

  std::size_t block_count() const noexcept { return blocks_.size(); }
  const std::string& name(block_id id) const { return at(id, "ogpsa::projector::name").name; }
  family family_of(block_id id) const { return at(id, "ogpsa::projector::family_of").kind; }
  /// The former name of `family_of`.
  [[deprecated("renamed family_of")]] family kind(block_id id) const { return family_of(id); }
  sharding sharding_of(block_id id) const { return at(id, "ogpsa::projector::sharding_of").sharded_by; }
  /// The former name of `sharding_of`.
  [[deprecated("renamed sharding_of")]] sharding layout(block_id id) const { return sharding_of(id); }
  /// The block's subspace, or nullptr before its first estimate.
  const subspace_type* subspace_of(block_id id) const {
    const auto& s = at(id, "ogpsa::projector::subspace_of").basis;
    return s ? &*s : nullptr;
  }

  const Estimator& estimator() const noexcept { return estimator_; }
  const Rule& rule() const noexcept { return rule_; }
  const Schedule& schedule() const noexcept { return schedule_; }
  execution& exec() noexcept { return exec_; }
  Reducer& reducer() noexcept { return reducer_; }

  std::size_t steps() const noexcept { return steps_; }
  std::size_t steps_since_refresh() const noexcept { return steps_since_refresh_; }
  std::size_t refreshes() const noexcept { return refreshes_; }

  /// True when every block has a subspace.
  bool ready() const noexcept {
    for (const block& b : blocks_)
      if (!b.basis) return false;
    return true;
  }

  /// True when a reference pass should run before the next projection.
  bool refresh_due() const { return !ready() || schedule_.due(steps_since_refresh_); }

  bool reference_pass_active() const noexcept { return pass_.has_value(); }

  /// Starts collecting reference gradients. \throws state_error if a pass is already active.
  void begin_reference_pass() {
    OGPSA_REQUIRE(!pass_, state_error, "ogpsa::projector::begin_reference_pass",
                  "a reference pass is already active");
    pass_.emplace();
    pass_->blocks.resize(blocks_.size());
    pass_->serial = ++passes_begun_;
  }

  class reference_pass_scope;

  /// Begins a reference pass as a scope that abandons it when destroyed unfinished, so that an
  /// exception between begin and finish cannot leave the pass open (the bases stay as they were):
  ///
  ///     auto pass = p.reference_pass();
  ///     pass.feed(block, reference_gradient, set);  // as many as needed
  ///     pass.finish(callbacks...);
  ///
  /// \throws state_error if a pass is already active.
  [[nodiscard]] reference_pass_scope reference_pass() { return reference_pass_scope(*this); }

  /// Drops the active pass, if any; the current bases stay.
  void abandon_reference_pass() noexcept { pass_.reset(); }

  /// Adds one reference gradient of `block` from reference data set `set` (0 for the first).
  /// The view is only read, and may have any element type and strides; its extents must be the
  /// block's. A flat block's reference matrix in the other memory order is copied into the
  /// block's order first; one of three or more dimensions must be in the block's order.
  /// \throws numeric_error for NaN/Inf, or when a streaming estimate overflows (the whole pass is
  ///         rejected and the current bases stay), shape_error for wrong extents, layout_error
  ///         for a flat block's reference of three or more dimensions in another memory order,
  ///         state_error outside a pass.
  template <tensor_view View>
  void feed(block_id id, View reference, index_t set = 0) {
    constexpr const char* where = "ogpsa::projector::feed";
    check_space<View>();
    const block& b = at_in_pass(id, where);
    check_extents(b, reference, where);
    const auto columns = detail::target_columns(ogpsa::as_const(reference), b.kind, where);
    if (b.kind != family::flat || in_block_order(b, reference)) return feed_target(id, columns, set, where);
    if constexpr (View::rank() == 2) {
      const auto copy = laid_out_like_block(b, ogpsa::as_const(reference));
      feed_target(id, detail::dense_columns<memory_space>(copy).as_vector(), set, where);
    } else {
      fail_order(b, reference, "the reference",
                 "a flat block reads its elements in memory order, and only references of two dimensions are "
                 "re-laid out",
                 where);
    }
  }

  /// Adds reference vectors given directly in the block's target space (see `ogpsa::family`):
  /// the m columns of `columns` (dimension x m, any m), e.g. a layer's inputs on the reference set
  /// for a right block, which is how GPM estimates input spaces. Estimators see them exactly as
  /// the target-space columns of a fed gradient. The view is only read; it needs one unit stride.
  /// \throws shape_error when the rows are not the block's dimension, and as `feed`.
  template <tensor_view View>
  void feed_columns(block_id id, View columns, index_t set = 0) {
    static_assert(View::rank() == 2, "feed_columns takes a matrix view: dimension x number of vectors");
    constexpr const char* where = "ogpsa::projector::feed_columns";
    check_space<View>();
    const block& b = at_in_pass(id, where);
    OGPSA_REQUIRE(columns.extent(0) == b.dimension, shape_error, where,
                  "block '" << b.name << "' (" << b.kind << ") has target dimension " << b.dimension
                            << ", got columns of length " << columns.extent(0));
    feed_target(id, detail::target_columns(ogpsa::as_const(columns), family::left, where), set, where);
  }

  /// Estimates every block's subspace from the pass and commits them all at once. On any error
  /// the pass is discarded and every block keeps its current subspace.
  ///
  /// The callbacks are notified after the commit (`subspace_of` gives the new subspaces,
  /// `refreshes()` counts this refresh). A callback that throws undoes the refresh: every block's
  /// previous subspace and the counters come back, and its exception propagates (the pass is
  /// consumed either way, and the callbacks notified before it are not told).
  /// \throws state_error outside a pass, for an empty pass or a block that was not fed;
  ///         numeric_error naming the block when an estimate is not finite (NaN or Inf in its
  ///         basis, strengths or captured energy: finite reference data whose squares overflow);
  ///         whatever the estimator throws (e.g. a rank larger than the data allows).
  template <class... Callbacks>
  void finish_reference_pass(Callbacks&&... callbacks) {
    detail::check_callbacks<std::remove_reference_t<Callbacks>...>();
    constexpr const char* where = "ogpsa::projector::finish_reference_pass";
    OGPSA_REQUIRE(pass_, state_error, where, "no reference pass is active");
    pass finished = std::move(*pass_);
    pass_.reset();
    check_complete(finished, where);
    std::vector<subspace_type> estimates = estimate(finished);
    require_finite(estimates);
    commit(std::move(estimates), callbacks...);
  }

  /// Projects every registered block in place, in one backend call, and counts one optimizer step.
  /// Sharded blocks whose target rows are split take one collective, for all of them together.
  /// The callbacks are notified after both: a callback that throws stops the notifications of
  /// this call, and its exception propagates with every gradient projected and the step counted.
  /// \throws state_error if some block has no subspace yet (nothing is modified then).
  template <class... Callbacks>
  void project(Callbacks&&... callbacks) {
    detail::check_callbacks<std::remove_reference_t<Callbacks>...>();
    targets_.clear();
    for (std::size_t i = 0; i < blocks_.size(); ++i) targets_.push_back({i, blocks_[i].target});
    const std::size_t step = steps_;
    project_targets<std::remove_reference_t<Callbacks>...>("ogpsa::projector::project");
    count_step();
    report_targets(step, callbacks...);
  }

  /// Projects the listed blocks' registered buffers in place, in one backend call (and at most one
  /// collective), without counting a step: for callers that project a subset, e.g. the blocks
  /// whose parameters moved. Every rank must list the same sharded blocks. As `project()`, a
  /// callback that throws propagates with the listed blocks projected.
  /// \throws state_error if a listed block has no subspace yet (nothing is modified then).
  template <class... Callbacks>
  void project_blocks(std::span<const block_id> ids, Callbacks&&... callbacks) {
    detail::check_callbacks<std::remove_reference_t<Callbacks>...>();
    constexpr const char* where = "ogpsa::projector::project_blocks";
    targets_.clear();
    for (block_id id : ids) targets_.push_back({id.index, at(id, where).target});
    project_targets<std::remove_reference_t<Callbacks>...>(where);
    report_targets(steps_, callbacks...);
  }

  /// Projects one gradient of a registered block, in place, without counting a step; a callback
  /// that throws propagates with the gradient projected.
  /// \throws shape_error for other extents than the block's, layout_error for a flat block's view
  ///         in another memory order than the registered one, state_error without a subspace
  ///         (nothing is modified then).
  template <tensor_view View, class... Callbacks>
  void project(block_id id, View gradient, Callbacks&&... callbacks) {
    detail::check_callbacks<std::remove_reference_t<Callbacks>...>();
    check_gradient_view<View>();
    constexpr const char* where = "ogpsa::projector::project";
    const block& b = at(id, where);
    check_extents(b, gradient, where);
    check_written_order(b, gradient, where);
    targets_.clear();
    targets_.push_back({id.index, detail::target_columns(gradient, b.kind, where)});
    project_targets<std::remove_reference_t<Callbacks>...>(where);
    report_targets(steps_, callbacks...);
  }

  /// Counts an optimizer step for the schedule, for callers that project block by block.
  void count_step() noexcept {
    ++steps_;
    ++steps_since_refresh_;
  }

  /// A host copy of everything needed to resume: counters, registrations and subspaces.
  state_type state() {
    state_type s{steps_, steps_since_refresh_, refreshes_, {}};
    for (const block& b : blocks_) {
      block_state<basis_type> bs{b.name, b.kind, b.extents, b.basis.has_value(), {}, {}, 0, 0};
      if (b.basis) {
        bs.basis = backend_type::to_host(exec_, b.basis->basis);
        bs.strengths = b.basis->strengths;
        bs.captured_energy = b.basis->captured_energy;
        bs.dropped = b.basis->dropped;
      }
      s.blocks.push_back(std::move(bs));
    }
    return s;
  }

  /// Restores a state saved by `state()` from a projector with the same blocks (same names,
  /// families and extents, in the same order). \throws shape_error / invalid_argument on a
  /// mismatch, numeric_error for a subspace that is not finite (NaN or Inf in its basis, strengths
  /// or captured energy), leaving this projector unchanged.
  void restore(const state_type& s) {
    constexpr const char* where = "ogpsa::projector::restore";
    OGPSA_REQUIRE(!pass_, state_error, where, "cannot restore during a reference pass");
    OGPSA_REQUIRE(s.blocks.size() == blocks_.size(), shape_error, where,
                  "the state has " << s.blocks.size() << " blocks, this projector has "
                                   << blocks_.size());
    std::vector<std::optional<subspace_type>> bases;
    for (std::size_t i = 0; i < blocks_.size(); ++i) bases.push_back(restored(blocks_[i], s.blocks[i]));
    for (std::size_t i = 0; i < blocks_.size(); ++i) blocks_[i].basis = std::move(bases[i]);
    steps_ = s.steps;
    steps_since_refresh_ = s.steps_since_refresh;
    refreshes_ = s.refreshes;
  }

 private:
  using gradient_ref = detail::matrix_ref<gradient_type, memory_space>;
  using block_pass = estimator_pass<Estimator, backend_type, work_type>;

  struct block {
    std::string name;
    family kind;
    sharding sharded_by;
    std::vector<index_t> extents;
    std::vector<index_t> strides;  ///< as registered: a flat block's memory order
    gradient_ref target;
    index_t dimension;
    std::optional<subspace_type> basis;

    /// What the sharding does to the target space (`ogpsa/sharding.hpp`).
    target_split split() const noexcept { return split_of(kind, sharded_by); }
  };

  struct pass {
    std::vector<std::optional<block_pass>> blocks;
    std::size_t serial = 0;  ///< which pass this is, counting from 1, for `reference_pass_scope`
  };

  /// The serial number of the active pass, 0 when none is active.
  std::size_t active_pass() const noexcept { return pass_ ? pass_->serial : 0; }

  using task = projection_task<typename backend_type::template matrix<basis_type>, gradient_ref>;
  using accumulator = accumulator_t<gradient_type, basis_type>;
  static_assert(!Reducer::communicates ||
                    requires(Reducer& r, typename backend_type::workspace& ws) {
                      r.sum(ws.template packed_coefficients<accumulator>());
                    },
                "ogpsa::projector: this communicating reducer cannot sum the backend's packed coefficients "
                "(ogpsa::torch::c10d_reducer sums host buffers; the CUDA backend's live in device memory "
                "and it has no distributed path yet): use ogpsa::local_reducer with device storage");
  using estimate_type = ogpsa::subspace<work_type, backend_type>;

  /// A block's target-space columns about to be projected.
  struct target {
    std::size_t block;
    gradient_ref columns;
  };

  static constexpr bool estimates_sharded =
      requires(block_pass& s, execution& e) { s.estimate(e, target_shard{}); };

  /// Checks finiteness (rejecting the whole pass on NaN/Inf) and hands the columns to the block's
  /// estimator pass, created on first use.
  template <class Columns>
  void feed_target(block_id id, const Columns& columns, index_t set, const char* where) {
    const block& b = blocks_[id.index];
    if (!backend_type::all_finite(exec_, columns)) {
      pass_.reset();
      OGPSA_FAIL(numeric_error, where,
                 "reference data for block '" << b.name << "' (set " << set
                                              << ") contains NaN or Inf; the reference pass was "
                                                 "rejected and the current bases are kept");
    }
    auto& slot = pass_->blocks[id.index];
    if (!slot) slot.emplace(estimator_, b.dimension, b.name);
    try {
      slot->feed(exec_, columns, set);
    } catch (const numeric_error& e) {  // a streaming estimate that overflowed
      pass_.reset();
      OGPSA_FAIL(numeric_error, where,
                 "block '" << b.name << "': the estimate is not finite (" << e.what()
                           << "); the reference pass was rejected and every block keeps its basis");
    }
  }

  template <class View>
  static constexpr void check_space() {
    static_assert(std::is_same_v<typename View::memory_space, memory_space>,
                  "the view lives in a different memory space than this projector's subspaces: "
                  "choose ogpsa::storage<Gradient, Basis, Space> with the view's memory space");
  }

  template <class View>
  static constexpr void check_gradient_view() {
    check_space<View>();
    static_assert(!std::is_const_v<typename View::element_type>,
                  "the projector writes projected gradients in place: pass a writable view");
    static_assert(std::is_same_v<typename View::element_type, gradient_type>,
                  "the view's element type differs from the projector's gradient type: "
                  "choose ogpsa::storage<Gradient, ...> with the view's element type");
  }

  template <class View>
  static void check_extents(const block& b, const View& v, const char* where) {
    const std::vector<index_t> e = detail::extents_of(v);
    OGPSA_REQUIRE(e == b.extents, shape_error, where,
                  "block '" << b.name << "' has extents " << detail::format_indices(b.extents) << ", got "
                            << detail::format_indices(e));
  }

  template <class View>
  static bool in_block_order(const block& b, const View& v) {
    return detail::same_memory_order(b.extents, b.strides, detail::strides_of(v));
  }

  template <class View>
  [[noreturn]] static void fail_order(const block& b, const View& v, std::string_view what,
                                      std::string_view why, const char* where) {
    OGPSA_FAIL(layout_error, where,
               "block '" << b.name << "' is " << detail::describe_memory_order(b.extents, b.strides) << ", "
                         << what << " is " << detail::describe_memory_order(b.extents, detail::strides_of(v))
                         << ": " << why << "; pass a view laid out like the registered one");
  }

  /// A view that is written in place must be in a flat block's registered memory order.
  template <class View>
  static void check_written_order(const block& b, const View& v, const char* where) {
    if (b.kind == family::flat && !in_block_order(b, v))
      fail_order(b, v, "the view", "a flat block's projection writes its elements in place, in memory order",
                 where);
  }

  /// A flat block's dense reference matrix `v` in the other memory order, copied into the block's
  /// order: the block's faster dimension becomes the rows of a column-major copy (same elements).
  template <class T>
  auto laid_out_like_block(const block& b, const strided_view<T, 2, memory_space>& v) {
    const std::size_t fast = b.strides[0] < b.strides[1] ? 0 : 1, slow = 1 - fast;
    const detail::matrix_ref<T, memory_space> source{v.data_handle(), v.extent(fast), v.extent(slow),
                                                     v.stride(fast), v.stride(slow)};
    auto copy = backend_type::template zeros<std::remove_const_t<T>>(exec_, source.rows, source.cols);
    backend_type::copy_into(exec_, source, copy, 0);
    return copy;
  }

  const block& at(block_id id, const char* where) const {
    OGPSA_REQUIRE(id.index < blocks_.size(), invalid_argument, where,
                  "no block with index " << id.index << " (" << blocks_.size() << " registered)");
    return blocks_[id.index];
  }
  block& at(block_id id, const char* where) {
    return const_cast<block&>(std::as_const(*this).at(id, where));
  }

  const block& at_in_pass(block_id id, const char* where) const {
    OGPSA_REQUIRE(pass_, state_error, where,
                  "no reference pass is active; call begin_reference_pass() first");
    return at(id, where);
  }

  static void require_subspace(const block& b, const char* where) {
    OGPSA_REQUIRE(b.basis, state_error, where,
                  "block '" << b.name << "' has no subspace yet; finish a reference pass first");
  }

  void check_complete(const pass& p, const char* where) const {
    std::size_t fed = 0;
    for (const auto& s : p.blocks) fed += s.has_value();
    OGPSA_REQUIRE(fed > 0, state_error, where,
                  "empty reference pass: no reference gradient was fed (" << blocks_.size()
                                                                          << " blocks registered)");
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      OGPSA_REQUIRE(p.blocks[i], state_error, where,
                    "block '" << blocks_[i].name << "' received no reference gradient (" << fed
                              << " of " << blocks_.size() << " blocks were fed)");
  }

  subspace_type to_storage(ogpsa::subspace<work_type, backend_type>&& s) {
    if constexpr (std::is_same_v<work_type, basis_type>) {
      return std::move(s);
    } else {
      return subspace_type{backend_type::template convert<basis_type>(exec_, s.basis),
                           std::move(s.strengths), s.captured_energy, s.dropped};
    }
  }

  /// Swaps every block's new subspace in and advances the counters, then notifies; a callback that
  /// throws swaps the previous subspaces and counters back (no-throw moves) before it propagates.
  template <class... Callbacks>
  void commit(std::vector<subspace_type>&& estimates, Callbacks&... callbacks) {
    static_assert(std::is_nothrow_swappable_v<std::optional<subspace_type>>,
                  "undoing a refresh needs subspaces that swap without throwing");
    index_t total_rank = 0, dropped = 0;
    for (const subspace_type& s : estimates) total_rank += s.rank(), dropped += s.dropped;
    std::vector<std::optional<subspace_type>> other(std::make_move_iterator(estimates.begin()),
                                                    std::make_move_iterator(estimates.end()));
    const auto swap_bases = [&]() noexcept {
      for (std::size_t i = 0; i < blocks_.size(); ++i) blocks_[i].basis.swap(other[i]);
    };
    const std::size_t since = steps_since_refresh_;
    swap_bases();  // `other` now holds the previous subspaces
    steps_since_refresh_ = 0;
    ++refreshes_;
    try {
      for (std::size_t i = 0; i < blocks_.size(); ++i)
        if (const subspace_type& s = *blocks_[i].basis; s.dropped > 0)
          detail::notify_degenerate(degenerate_info{blocks_[i].name, i, s.rank(), s.dropped}, callbacks...);
      detail::notify_refresh(refresh_info{steps_, refreshes_, blocks_.size(), total_rank, dropped},
                             callbacks...);
    } catch (...) {
      swap_bases();
      steps_since_refresh_ = since;
      --refreshes_;
      throw;
    }
  }

  /// Projects `targets_`: blocks whose target rows are split across ranks in two phases around one
  /// sum of all their packed coefficients (the rule is nonlinear: it must see the whole sums),
  /// the others fused and without communication. `report_targets` then reports them. The stats
  /// the callbacks read decide what the backend measures and brings back: a device backend whose
  /// callers read nothing returns without waiting for the device.
  template <class... Callbacks>
  void project_targets(const char* where) {
    constexpr bool diagnostics = detail::wants_projection_info<Callbacks...>;
    constexpr flags_report flags = detail::wants_block_flags<Callbacks...> ? flags_report::read : flags_report::unread;
    shared_.clear();
    local_.clear();
    for (const target& t : targets_) {
      const block& b = blocks_[t.block];
      require_subspace(b, where);
      (b.split() == target_split::rows ? shared_ : local_).push_back(task{&b.basis->basis, t.columns, {}});
    }
    // A local reducer has no sharded block (add_block refuses them): the two-phase path is not
    // even compiled then, so that backends whose packed buffer lives on a device need no host sum.
    if constexpr (Reducer::communicates)
      if (!shared_.empty()) {
        backend_type::coefficients_all(exec_, std::span<task>(shared_), workspace_, diagnostics);
        reducer_.sum(workspace_.template packed_coefficients<accumulator>());
        backend_type::update_all(exec_, std::span<task>(shared_), rule_, workspace_, diagnostics);
        if (diagnostics) {  // each rank measured its rows of the projected blocks
          reducer_.sum(workspace_.template packed_measurements<accumulator>());
          backend_type::measure_all(exec_, std::span<task>(shared_), workspace_);
        }
      }
    backend_type::project_all(exec_, std::span<task>(local_), rule_, workspace_, diagnostics, flags);
  }

  /// Notifies the callbacks of the projected `targets_`, in their order, as of optimizer step `step`.
  template <class... Callbacks>
  void report_targets(std::size_t step, Callbacks&... callbacks) {
    std::size_t next_shared = 0, next_local = 0;
    for (const target& t : targets_) {
      const bool shared = blocks_[t.block].split() == target_split::rows;
      report(t.block, (shared ? shared_[next_shared++] : local_[next_local++]).stats, step, callbacks...);
    }
  }

  /// Every block's estimate from a finished pass. Sharded blocks run as coroutines that await sums
  /// across ranks, all blocks' sums of a round in one collective; the others finish locally.
  std::vector<subspace_type> estimate(pass& finished) {
    std::vector<std::optional<estimate_type>> estimates(blocks_.size());
    std::vector<std::size_t> sharded;
    std::vector<detail::rounds<estimate_type>> rounds;
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      if (blocks_[i].split() == target_split::none) {
        try {
          estimates[i] = finished.blocks[i]->finish(exec_);
        } catch (const numeric_error& e) {
          reject_non_finite("block '" + blocks_[i].name + "'", e.what());
        }
        continue;
      }
      if constexpr (estimates_sharded) {
        sharded.push_back(i);
        rounds.push_back(finished.blocks[i]->estimate(exec_, {blocks_[i].split(), reducer_.position()}));
      }
    }
    try {
      detail::run_rounds(rounds, reducer_);
    } catch (const numeric_error& e) {
      reject_non_finite("a sharded block", e.what());
    }
    for (std::size_t j = 0; j < sharded.size(); ++j) estimates[sharded[j]] = rounds[j].result();
    std::vector<subspace_type> out;
    out.reserve(blocks_.size());
    for (auto& e : estimates) out.push_back(to_storage(std::move(*e)));
    return out;
  }

  /// Whether `s` holds numbers only: its basis (checked where it lives), strengths and energy.
  bool is_finite(const subspace_type& s) {
    const auto finite = [](double x) { return std::isfinite(x); };
    return std::isfinite(s.captured_energy) && std::all_of(s.strengths.begin(), s.strengths.end(), finite) &&
           backend_type::all_finite(exec_, detail::dense_columns<memory_space>(s.basis));
  }

  /// Rejects the pass when some block's estimate is not finite. A block whose target rows are split
  /// holds only this rank's rows of its basis, so whether they are finite is summed across ranks
  /// (one value per such block, in one collective): every rank rejects, or commits, the same pass.
  void require_finite(const std::vector<subspace_type>& estimates) {
    std::vector<double> non_finite_rows;  // per block whose target rows are split: ranks with NaN/Inf
    std::optional<std::size_t> non_finite;  // a block with a whole basis on this rank
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      const bool finite = is_finite(estimates[i]);
      if (blocks_[i].split() == target_split::rows)
        non_finite_rows.push_back(finite ? 0.0 : 1.0);
      else if (!finite && !non_finite)
        non_finite = i;
    }
    // Summed before any rejection: every rank reaches the collective.
    if (!non_finite_rows.empty()) reducer_.sum(std::span<double>(non_finite_rows));
    if (non_finite)
      reject_non_finite("block '" + blocks_[*non_finite].name + "'",
                        "NaN or Inf in its basis, strengths or captured energy");
    std::size_t j = 0;
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      if (blocks_[i].split() == target_split::rows)
        if (const double ranks = non_finite_rows[j++]; ranks > 0)
          reject_non_finite("block '" + blocks_[i].name + "'",
                            "NaN or Inf in its basis on " + std::to_string(static_cast<long>(ranks)) + " of " +
                                std::to_string(reducer_.position().ranks) + " ranks");
  }

  /// Rejects a finished pass whose estimate of `block` is not finite; no block has changed yet.
  [[noreturn]] static void reject_non_finite(const std::string& block, std::string_view cause) {
    OGPSA_FAIL(numeric_error, "ogpsa::projector::finish_reference_pass",
               block << ": the estimate is not finite (" << cause
                     << "); the reference pass was rejected and every block keeps its basis");
  }

  // `if constexpr` rather than a condition the compiler knows: nvcc rejects the code after an
  // unconditional throw as unreachable.
  void check_shardable(const std::string& name, family kind, sharding sharded_by) const {
    constexpr const char* where = "ogpsa::projector::add_block";
    if constexpr (!Reducer::communicates) {
      OGPSA_FAIL(invalid_argument, where,
                 "block '" << name << "' is sharded by " << sharded_by
                           << " but the projector's reducer is local (one process): use a "
                              "distributed reducer such as ogpsa::torch::c10d_reducer");
    } else if constexpr (!estimates_sharded) {
      OGPSA_FAIL(invalid_argument, where,
                 Estimator::name << " cannot estimate sharded blocks (block '" << name << "' is sharded by "
                                 << sharded_by << ")");
    } else if constexpr (requires { Estimator::splits_target_rows; }) {
      OGPSA_REQUIRE(Estimator::splits_target_rows || split_of(kind, sharded_by) != target_split::rows, invalid_argument,
                    where, Estimator::name << " cannot estimate block '" << name << "' (" << kind << ", sharded by "
                                           << sharded_by << "): that splits its target rows; only blocks whose ranks "
                                              "hold whole target vectors can merge sketches");
    }
  }

  template <class... Callbacks>
  void report(std::size_t i, const projection_stats& stats, std::size_t step, Callbacks&... callbacks) {
    const block& b = blocks_[i];
    if (!stats.finite) {
      detail::notify_non_finite(non_finite_info{b.name, i, step}, callbacks...);
      return;
    }
    if constexpr (detail::wants_projection_info<Callbacks...>)
      detail::notify_projection(detail::describe_projection(b.name, i, b.kind, b.basis->rank(), stats),
                                callbacks...);
  }

  std::optional<subspace_type> restored(const block& b, const block_state<basis_type>& s) {
    constexpr const char* where = "ogpsa::projector::restore";
    OGPSA_REQUIRE(s.name == b.name && s.kind == b.kind && s.extents == b.extents, shape_error,
                  where,
                  "saved block '" << s.name << "' (" << s.kind << ", " << detail::format_indices(s.extents)
                                  << ") does not match block '" << b.name << "' (" << b.kind << ", "
                                  << detail::format_indices(b.extents) << ")");
    if (!s.has_subspace) return std::nullopt;
    OGPSA_REQUIRE(s.basis.rows() == b.dimension, shape_error, where,
                  "saved basis of block '" << b.name << "' has " << s.basis.rows()
                                           << " rows, the block's dimension is " << b.dimension);
    subspace_type out{backend_type::from_host(exec_, s.basis), s.strengths, s.captured_energy, s.dropped};
    OGPSA_REQUIRE(is_finite(out), numeric_error, where,
                  "saved subspace of block '" << b.name
                                              << "' is not finite (NaN or Inf in its basis, strengths or "
                                                 "captured energy)");
    return out;
  }

  Estimator estimator_;
  Rule rule_;
  Schedule schedule_;
  execution exec_;
  Reducer reducer_;
  std::vector<block> blocks_;
  std::optional<pass> pass_;
  std::size_t passes_begun_ = 0;
  typename backend_type::workspace workspace_;
  std::vector<target> targets_;  // reused by every projection, so that a step allocates nothing
  std::vector<task> shared_;     // once warm: blocks whose coefficients are summed across ranks,
  std::vector<task> local_;      // and the others
  std::size_t steps_ = 0;
  std::size_t steps_since_refresh_ = 0;
  std::size_t refreshes_ = 0;
};

/// A reference pass of one projector, begun by `projector::reference_pass()`: `feed` and
/// `feed_columns` as the projector's, `finish` as `finish_reference_pass`. Destroying the scope
/// before `finish` abandons its pass (a no-op when the pass already ended, e.g. rejected for NaN
/// input: a later pass begun otherwise is never touched). Movable, not copyable.
template <subspace_estimator Estimator, projection_rule Rule, refresh_schedule Schedule, class Storage,
          reducer Reducer>
class projector<Estimator, Rule, Schedule, Storage, Reducer>::reference_pass_scope {
 public:
  reference_pass_scope(reference_pass_scope&& other) noexcept
      : projector_(std::exchange(other.projector_, nullptr)), serial_(other.serial_) {}
  reference_pass_scope& operator=(reference_pass_scope&&) = delete;
  ~reference_pass_scope() {
    if (projector_ && projector_->active_pass() == serial_) projector_->abandon_reference_pass();
  }

  /// \throws state_error once the pass has ended (finished, or rejected), and as `projector::feed`.
  template <tensor_view View>
  void feed(block_id id, View reference, index_t set = 0) {
    active("ogpsa::projector::reference_pass_scope::feed").feed(id, reference, set);
  }

  /// \throws state_error once the pass has ended, and as `projector::feed_columns`.
  template <tensor_view View>
  void feed_columns(block_id id, View columns, index_t set = 0) {
    active("ogpsa::projector::reference_pass_scope::feed_columns").feed_columns(id, columns, set);
  }

  /// Finishes the pass: `projector::finish_reference_pass(callbacks...)`, with its guarantees.
  /// \throws state_error once the pass has ended, and as `finish_reference_pass`.
  template <class... Callbacks>
  void finish(Callbacks&&... callbacks) {
    projector& p = active("ogpsa::projector::reference_pass_scope::finish");
    projector_ = nullptr;
    p.finish_reference_pass(std::forward<Callbacks>(callbacks)...);
  }

 private:
  friend class projector;
  explicit reference_pass_scope(projector& p) : projector_(&p) {
    p.begin_reference_pass();
    serial_ = p.active_pass();
  }

  projector& active(const char* where) const {
    OGPSA_REQUIRE(projector_ && projector_->active_pass() == serial_, state_error, where,
                  "this scope's reference pass has ended (finished, or rejected by an error)");
    return *projector_;
  }

  projector* projector_;
  std::size_t serial_ = 0;
};

/// The published OGPSA method (the authors' release): one mean-gradient direction per reference
/// set and per parameter tensor (flat blocks), hard orthogonal projection, refreshed every n steps
/// (30 by default; the release's DPO stage uses 5). It follows the release's formulas, including
/// its edge case that a tensor without a first-set direction is left unchanged even when the
/// second set has one (`mean_gradient::first_set_required`), with one deviation: a refresh in
/// which a set's mean is zero for a tensor drops that set's direction, where the release keeps
/// the previous refresh's (why: see `mean_gradient`). Projecting after gradient accumulation, as
/// `project()` does, equals the release's per-micro-batch hook here, since the rule is linear.
/// The release's threshold mode is `projector<mean_gradient, conflict_only, every_n_steps,
/// storage<float>>` with `conflict_only{.behaviour = threshold}` and `several_directions` set to
/// `project` (its SFT trainer) or `unchanged` (its DPO trainer); `conflict_only` says how it
/// counts directions and when deciding per micro-batch matters.
using published_projector = projector<mean_gradient, orthogonal, every_n_steps, storage<float>>;

}  // namespace ogpsa
