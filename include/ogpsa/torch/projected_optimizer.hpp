#pragma once
/// \file
/// `projected_optimizer`: turns any `torch::optim::Optimizer` into one whose safety updates stay
/// out of the capability subspace (OGPSA, Sun et al., arXiv 2602.07892).
///
///     torch::optim::AdamW adamw(model->parameters(), torch::optim::AdamWOptions(1e-4));
///     ogpsa::torch::projected_optimizer opt(adamw, model->named_parameters(),
///         [&](ogpsa::torch::reference_pass& pass) { for (auto& b : general) pass.feed(lm_loss(b)); },
///         ogpsa::projector<ogpsa::exact_svd>(ogpsa::exact_svd{.rank = 8}, {}, ogpsa::every_n_steps{30}));
///     for (auto& batch : safety) {
///       adamw.zero_grad();
///       safety_loss(batch).backward();   // accumulate micro-batches as usual
///       opt.project();                   // refresh if due, then project the accumulated gradients
///       torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
///       opt.step();
///     }
///
/// **Where projection happens.** `project()` runs after gradient accumulation and before clipping
/// and the inner `step()`: it first refreshes the subspace when the schedule says so (running the
/// reference closure at the current weights), then projects every registered parameter's
/// `.grad()` in place. `step()` projects first if `project()` was not called for this step, so
/// `backward(); opt.step();` is also correct (clipping after projection is equally safe, since
/// projection never lengthens a gradient); calling `project()` twice for one step throws.
///
/// **Reference passes are isolated.** Reference gradients come from `torch::autograd::grad`, never
/// from `.grad()`; the wrapper records every registered gradient buffer's identity and version
/// counter before the closure runs and throws `state_error` (abandoning the pass, keeping the old
/// bases) if the closure changed any of them, e.g. by calling `backward()`.
///
/// **Update-space projection** (`placement::update`). With Adam-family optimizers a gradient
/// orthogonal to the subspace does not give an orthogonal step: per-coordinate scaling, momentum
/// and weight decay reintroduce subspace components. Placing the projection on the update instead
/// snapshots each parameter that has a gradient, runs the inner step, and writes back
/// old + P(new - old), so the step actually taken is orthogonal to the subspace; the updates of all
/// parameters are projected in one backend call. Cost per step: one parameter-sized snapshot
/// buffer per parameter with a gradient (allocated once) and its copy, plus, for each parameter
/// with a non-empty subspace, about 6 more element reads and writes per element (subtract, add
/// back) and one projection of the update; a parameter whose subspace is empty is not changed
/// beyond the inner step, so an empty subspace steps exactly like the inner optimizer.
/// `placement::gradient_and_update` does both (the optimizer's moments then see projected
/// gradients too).
///
/// **Exceptions during an update step.** Whatever throws once the snapshots are taken (the inner
/// step itself, a callback, a `layout_error` for a parameter the inner step left non-contiguous,
/// `bad_alloc`), every registered parameter with a gradient gets its old weights back, bit for
/// bit, before the exception leaves `step()` (under `placement::update` the projector then counts
/// no step): a parameter never holds anything but its old weights or its new projected ones.
/// The inner optimizer's own state is not rolled back: it has advanced as if the step had been
/// taken (Adam's moments and step count include this step's gradient), since undoing it would
/// need a copy of that state at every step.
///
/// **Per-micro-batch projection** (`placement::micro_batches`). A tensor hook on every registered
/// parameter projects each `backward()`'s gradient before autograd accumulates it into `.grad()`,
/// as the published code does. For a fixed basis and a linear rule (`orthogonal`, `soft`) this
/// gives the same accumulated gradient as projecting once after accumulation, up to rounding, at
/// the cost of one gradient copy, one projection and one backend call per parameter and
/// micro-batch. It matters for the non-linear rules: `conflict_only` decides per gradient it
/// sees (its threshold mode whether to remove or scale, per direction mode which components to
/// remove), so per micro-batch it reproduces the published decisions and after accumulation it
/// makes one decision per step. Here `project()` does nothing, and `step()` runs the inner step,
/// counts the step and then refreshes when due, at the new weights, so that the next step's
/// gradients see the new basis; call `refresh()` once before the first `backward()` (a gradient
/// arriving before any basis exists throws `state_error` out of `backward()`). Every gradient
/// `backward()` accumulates into a registered parameter is projected (LibTorch 1.13 runs no
/// tensor hook of a leaf for `torch::autograd::grad`; reference passes are exempt in any case);
/// these projections report to no callback. The hooks refer to the wrapper and are removed with
/// it, so a `projected_optimizer` can be neither copied nor moved.
///
/// **Per-parameter families.** `projection_options::families` maps each parameter's name and
/// tensor to `flat`, `left` or `right` (see `<ogpsa/torch/family_choice.hpp>`); by default weights
/// of two or more dimensions get right (input-space) bases when the estimator and rule allow it,
/// and everything else is flat.
///
/// Closure-based optimizers (`step(closure)`, LBFGS) are not supported.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include <torch/optim/optimizer.h>
#include <torch/ordered_dict.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "ogpsa/cpu/backend.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/family.hpp"
#include "ogpsa/projector.hpp"
#include "ogpsa/torch/family_choice.hpp"
#include "ogpsa/torch/reference_pass.hpp"
#include "ogpsa/torch/serialize.hpp"
#include "ogpsa/torch/tensor_view.hpp"

namespace ogpsa::torch {

/// What the projection acts on.
enum class placement {
  gradient,             ///< the accumulated gradients, before clipping and the inner step
  update,               ///< the step the inner optimizer took (after Adam's scaling, momentum, decay)
  gradient_and_update,  ///< both
  micro_batches,        ///< each backward()'s gradient, by a tensor hook, before it is accumulated
};

/// Options of `projected_optimizer`.
///
/// | option     | type             | default  | meaning |
/// |------------|------------------|----------|---------|
/// | `where`    | `placement`      | gradient | what the projection acts on |
/// | `families` | `family_chooser` | empty    | each parameter's family; empty: `right_for_matrices` when the estimator and the rule support right blocks, else `flat_blocks` |
struct projection_options {
  placement where = placement::gradient;
  family_chooser families = {};
};

/// Wraps a LibTorch optimizer so that its updates are projected onto the orthogonal complement of
/// the capability subspace of each registered parameter (see this header's description).
///
/// \tparam Projector  an `ogpsa::projector<Estimator, Rule, Schedule, Storage>` whose gradient
///                    element type is the parameters' dtype and whose memory space is their device
template <class Projector = published_projector>
class projected_optimizer {
 public:
  using projector_type = Projector;
  using gradient_type = typename Projector::gradient_type;
  using basis_type = typename Projector::basis_type;
  using memory_space = typename Projector::memory_space;
  using state_type = typename Projector::state_type;
  /// Feeds one reference pass; called at the current weights whenever a refresh is due.
  using reference_fn = std::function<void(reference_pass&)>;

  static_assert(torch_element<gradient_type>,
                "the projector's gradient element type has no LibTorch dtype: choose "
                "ogpsa::storage<float>, <double>, <ogpsa::bfloat16> or <ogpsa::float16>");
  static_assert(torch_memory_space<memory_space>, "the projector's memory space has no LibTorch device");

  /// Registers, in order, every parameter of `parameters` (usually `module->named_parameters()`)
  /// that requires grad; the others are left alone (frozen weights).
  /// \throws invalid_argument when `reference` is empty, no parameter requires grad, a parameter is
  ///         not stepped by `optimizer`, is registered twice (tied weights), or has a dtype or
  ///         device other than the projector's; shape_error for a matrix-side family on a tensor
  ///         of fewer than two dimensions; whatever `projector::add_block` throws.
  projected_optimizer(::torch::optim::Optimizer& optimizer,
                      const ::torch::OrderedDict<std::string, at::Tensor>& parameters, reference_fn reference,
                      Projector projector = Projector{}, projection_options options = {})
      : optimizer_(optimizer),
        reference_(std::move(reference)),
        projector_(std::move(projector)),
        where_(options.where) {
    OGPSA_REQUIRE(reference_, invalid_argument, constructor_name,
                  "no reference closure: the capability subspace is estimated from it");
    const family_chooser choose = options.families ? std::move(options.families) : default_families();
    const std::unordered_set<const void*> stepped = stepped_by(optimizer_);
    for (const auto& item : parameters)
      if (item.value().requires_grad())
        add(item.key(), item.value(), choose(item.key(), item.value()), stepped);
    OGPSA_REQUIRE(!parameters_.empty(), invalid_argument, constructor_name,
                  "none of the " << parameters.size() << " parameters requires grad: nothing to project");
    if (where_ == placement::micro_batches) install_hooks();
  }

  projected_optimizer(const projected_optimizer&) = delete;
  projected_optimizer& operator=(const projected_optimizer&) = delete;

  /// Refreshes the subspace if due, then projects the accumulated gradients in place (with
  /// `placement::update` only the refresh happens here; with `placement::micro_batches` nothing:
  /// `backward()` projected). Call after the last `backward()` of the step and before clipping.
  /// Gradients still undefined (parameters the loss did not reach) are skipped. Callbacks are any
  /// objects with `ogpsa/callbacks.hpp` hooks, temporaries included.
  /// \throws state_error when called twice for one step; what `refresh()` throws.
  template <class... Callbacks>
  void project(Callbacks&&... callbacks) {
    OGPSA_REQUIRE(!projected_, state_error, "ogpsa::torch::projected_optimizer::project",
                  "the gradients of this step were already projected; call step() first");
    projected_ = where_ == placement::micro_batches;
    if (projected_) return;
    if (projector_.refresh_due()) refresh(callbacks...);
    if (where_ != placement::update) project_gradients(callbacks...);
    projected_ = true;
  }

  /// Takes one optimizer step: `project()` first unless it was called for this step, then the inner
  /// `step()`, projecting the update itself with `placement::update` / `gradient_and_update`, or
  /// followed by the refresh when due with `placement::micro_batches`.
  /// \throws what `project()` and the inner step throw; with an update placement, on any
  ///         exception every parameter keeps its old weights (see this header's description).
  template <class... Callbacks>
  void step(Callbacks&&... callbacks) {
    if (!projected_) project(callbacks...);
    projected_ = false;
    if (where_ == placement::gradient) {
      optimizer_.step();
      return;
    }
    if (where_ == placement::micro_batches) {
      optimizer_.step();
      projector_.count_step();
      if (projector_.refresh_due()) refresh(callbacks...);
      return;
    }
    step_projecting_update(callbacks...);
    if (where_ == placement::update) projector_.count_step();
  }

  /// Runs the reference closure now and commits the new subspaces (all blocks at once).
  /// \throws state_error if the closure changed a registered parameter's gradient, or fed no
  ///         block; what the closure and the estimator throw. On any error every block keeps its
  ///         previous subspace.
  template <class... Callbacks>
  void refresh(Callbacks&&... callbacks) {
    const std::vector<gradient_mark> before = gradient_marks();
    projector_.begin_reference_pass();
    const reference_scope scope(in_reference_pass_);
    try {
      reference_pass pass(
          names_, parameters_,
          [this](std::size_t i, const at::Tensor& gradient, index_t set) {
            projector_.feed(ids_[i], matricized_view<const gradient_type, memory_space>(gradient), set);
          },
          [this](std::size_t i, const at::Tensor& columns, index_t set) {
            projector_.feed_columns(ids_[i], view<const gradient_type, 2, memory_space>(columns), set);
          });
      reference_(pass);
      check_gradients_untouched(before);
      projector_.finish_reference_pass(callbacks...);
    } catch (...) {
      projector_.abandon_reference_pass();
      throw;
    }
  }

  /// True when the next `project()` or `step()` will run the reference closure first.
  bool refresh_due() const { return projector_.refresh_due(); }

  ::torch::optim::Optimizer& optimizer() noexcept { return optimizer_; }
  /// The projector, read-only: its blocks are bound to gradient buffers only while the wrapper
  /// projects, so projecting through it directly would be wrong.
  const Projector& projector() const noexcept { return projector_; }
  placement where() const noexcept { return where_; }
  /// The registered parameters and their names, in registration (block) order.
  const std::vector<at::Tensor>& parameters() const noexcept { return parameters_; }
  const std::vector<std::string>& names() const noexcept { return names_; }

  /// The projector's state (counters and bases, on the host), for custom checkpoint formats.
  state_type state() { return projector_.state(); }
  /// Restores a state from `state()` of a wrapper with the same registered parameters.
  /// \throws what `projector::restore` throws; this wrapper is unchanged then.
  void restore(const state_type& s) {
    projector_.restore(s);
    projected_ = false;
  }

  /// Writes the projector's state into `archive` under the key `ogpsa`, next to whatever else the
  /// archive holds (a module's parameters, for instance), bit-exactly.
  void save(::torch::serialize::OutputArchive& archive) {
    ::torch::serialize::OutputArchive nested(archive.compilation_unit());
    write_state(nested, projector_.state());
    archive.write(archive_key, nested);
  }

  /// Restores the state written by `save`. \throws invalid_argument when `archive` has none or it
  /// is malformed; what `restore` throws.
  void load(::torch::serialize::InputArchive& archive) {
    ::torch::serialize::InputArchive nested;
    OGPSA_REQUIRE(archive.try_read(archive_key, nested), invalid_argument,
                  "ogpsa::torch::projected_optimizer::load",
                  "the archive has no '" << archive_key << "' entry (written by projected_optimizer::save?)");
    restore(read_state<basis_type>(nested));
  }

 private:
  static constexpr const char* constructor_name = "ogpsa::torch::projected_optimizer";
  static constexpr const char* archive_key = "ogpsa";
  using registration_view = matrix_view<gradient_type, memory_space>;

  /// Marks a reference pass, whose gradients the micro-batch hooks leave alone: LibTorch 1.13 runs
  /// no tensor hook of a leaf for `autograd::grad`, and this keeps reference gradients unprojected
  /// on a version that does.
  struct reference_scope {
    bool& active;
    explicit reference_scope(bool& flag) : active(flag) { active = true; }
    ~reference_scope() { active = false; }
    reference_scope(const reference_scope&) = delete;
    reference_scope& operator=(const reference_scope&) = delete;
  };

  /// The tensor hooks of `placement::micro_batches`, removed when the wrapper goes (they hold it).
  class hook_set {
   public:
    hook_set() = default;
    hook_set(const hook_set&) = delete;
    hook_set& operator=(const hook_set&) = delete;
    ~hook_set() {
      for (auto& [tensor, handle] : hooks_) tensor.remove_hook(handle);
    }
    template <class Hook>
    void add(const at::Tensor& tensor, Hook hook) {
      hooks_.reserve(hooks_.size() + 1);  // so that a registered hook is always recorded
      hooks_.emplace_back(tensor, tensor.register_hook(std::move(hook)));
    }

   private:
    std::vector<std::pair<at::Tensor, unsigned>> hooks_;
  };

  /// A gradient buffer's identity and version counter: any change means someone wrote to it.
  struct gradient_mark {
    const void* buffer = nullptr;
    std::int64_t version = 0;
    friend bool operator==(const gradient_mark&, const gradient_mark&) = default;
  };

  static std::unordered_set<const void*> stepped_by(const ::torch::optim::Optimizer& optimizer) {
    std::unordered_set<const void*> stepped;
    for (const auto& group : optimizer.param_groups())
      for (const at::Tensor& p : group.params()) stepped.insert(p.unsafeGetTensorImpl());
    return stepped;
  }

  family_chooser default_families() const {
    const bool matrix_side =
        projector_.estimator().supports(family::right) && projector_.rule().supports(family::right);
    return matrix_side ? family_chooser(right_for_matrices) : family_chooser(flat_blocks);
  }

  void add(const std::string& name, const at::Tensor& p, family kind,
           const std::unordered_set<const void*>& stepped) {
    check_parameter(name, p, kind, stepped);
    // Registration records extents, layout and family; the data pointer is bound to the current
    // gradient buffer before every projection (frameworks reallocate .grad()), so none is kept.
    const registration_view layout = matricized_view<gradient_type, memory_space>(p);
    ids_.push_back(
        projector_.add_block(name, registration_view(nullptr, layout.extents(), layout.strides()), kind));
    names_.push_back(name);
    parameters_.push_back(p);
  }

  void check_parameter(const std::string& name, const at::Tensor& p, family kind,
                       const std::unordered_set<const void*>& stepped) const {
    OGPSA_REQUIRE(stepped.contains(p.unsafeGetTensorImpl()), invalid_argument, constructor_name,
                  "parameter '" << name << "' is not in any of the optimizer's parameter groups");
    for (std::size_t i = 0; i < parameters_.size(); ++i)
      OGPSA_REQUIRE(!parameters_[i].is_same(p), invalid_argument, constructor_name,
                    "parameter '" << name << "' is the same tensor as '" << names_[i]
                                  << "' (tied weights): register it once");
    OGPSA_REQUIRE(p.scalar_type() == scalar_type_of<gradient_type>, invalid_argument, constructor_name,
                  "parameter '" << name << "' has dtype " << p.scalar_type()
                                << ", the projector's gradients are " << element_traits<gradient_type>::name
                                << " (choose ogpsa::storage<...> to match)");
    OGPSA_REQUIRE(p.device().type() == device_type_of<memory_space>, invalid_argument, constructor_name,
                  "parameter '" << name << "' is on device " << p.device()
                                << ", the projector's memory space is " << memory_space::name);
    OGPSA_REQUIRE(kind == family::flat || p.dim() >= 2, shape_error, constructor_name,
                  "parameter '" << name << "' (sizes " << p.sizes() << ") cannot have a " << kind
                                << " subspace: matrix-side families need at least two dimensions");
    OGPSA_REQUIRE(p.dim() <= 2 || p.is_contiguous(), layout_error, constructor_name,
                  "parameter '" << name << "' has " << p.dim()
                                << " dimensions and is not contiguous (strides " << p.strides()
                                << "): it cannot be matricized");
  }

  std::vector<gradient_mark> gradient_marks() const {
    std::vector<gradient_mark> marks;
    marks.reserve(parameters_.size());
    for (const at::Tensor& p : parameters_) {
      const at::Tensor& g = p.grad();
      marks.push_back(g.defined() ? gradient_mark{g.unsafeGetTensorImpl(), g._version()} : gradient_mark{});
    }
    return marks;
  }

  void check_gradients_untouched(const std::vector<gradient_mark>& before) const {
    const std::vector<gradient_mark> after = gradient_marks();
    for (std::size_t i = 0; i < parameters_.size(); ++i)
      OGPSA_REQUIRE(after[i] == before[i], state_error, "ogpsa::torch::projected_optimizer::refresh",
                    "the reference closure changed the gradient of parameter '"
                        << names_[i]
                        << "' (did it call backward()? hand losses to reference_pass::feed "
                           "instead); the reference pass was abandoned");
  }

  void install_hooks() {
    for (std::size_t i = 0; i < parameters_.size(); ++i)
      hooks_.add(parameters_[i], [this, i](const at::Tensor& g) { return projected_micro_batch(i, g); });
  }

  /// One backward()'s gradient of parameter i, projected in a new buffer laid out like the
  /// parameter (the block's registered layout; autograd's may be expanded or transposed), or
  /// undefined (left as it is) inside a reference pass.
  at::Tensor projected_micro_batch(std::size_t i, const at::Tensor& g) {
    if (in_reference_pass_) return {};
    OGPSA_REQUIRE(projector_.ready(), state_error, "ogpsa::torch::projected_optimizer::micro_batch_hook",
                  "parameter '" << names_[i]
                                << "' received a gradient before any subspace was estimated: with "
                                   "placement::micro_batches call refresh() before the first backward()");
    ::torch::NoGradGuard no_grad;
    at::Tensor out = at::empty_like(parameters_[i]).copy_(g);
    projector_.project(ids_[i], matricized_view<gradient_type, memory_space>(out));
    return out;
  }

  /// Projects every defined gradient in one backend call and counts one step.
  template <class... Callbacks>
  void project_gradients(Callbacks&... callbacks) {
    batch_.clear();
    for (std::size_t i = 0; i < parameters_.size(); ++i)
      if (parameters_[i].grad().defined()) {
        projector_.rebind(ids_[i], matricized_view<gradient_type, memory_space>(parameters_[i].grad()));
        batch_.push_back(ids_[i]);
      }
    if (batch_.size() == parameters_.size()) {  // the common case
      projector_.project(callbacks...);
      return;
    }
    projector_.project_blocks(std::span<const block_id>(batch_), callbacks...);
    projector_.count_step();
  }

  /// Inner step, then param = old + P(param - old), in one backend call, for every parameter that
  /// has a gradient and a non-empty subspace. Every parameter with a gradient is snapshot first
  /// and gets its old weights back if anything throws from the inner step on.
  template <class... Callbacks>
  void step_projecting_update(Callbacks&... callbacks) {
    ::torch::NoGradGuard no_grad;
    take_snapshots();
    try {
      optimizer_.step();
      project_updates(callbacks...);
    } catch (...) {
      restore_snapshots();
      throw;
    }
  }

  /// Records in `stepped_` the parameters the inner step may move (those with a gradient) and
  /// copies each into its snapshot buffer.
  void take_snapshots() {
    stepped_.clear();
    for (std::size_t i = 0; i < parameters_.size(); ++i)
      if (parameters_[i].grad().defined()) stepped_.push_back(i);
    snapshots_.resize(parameters_.size());
    for (std::size_t i : stepped_) {
      if (!snapshots_[i].defined()) snapshots_[i] = at::empty_like(parameters_[i]);
      snapshots_[i].copy_(parameters_[i]);
    }
  }

  /// Turns each moving parameter into its update, projects all of them in one call, and adds the
  /// old weights back. Parameters with an empty subspace are left as the inner step made them.
  template <class... Callbacks>
  void project_updates(Callbacks&... callbacks) {
    batch_.clear();
    moving_.clear();
    for (std::size_t i : stepped_)
      if (projector_.subspace_of(ids_[i])->rank() > 0) {
        projector_.rebind(ids_[i], matricized_view<gradient_type, memory_space>(parameters_[i]));
        batch_.push_back(ids_[i]);
        moving_.push_back(i);
      }
    for (std::size_t i : moving_) parameters_[i].sub_(snapshots_[i]);
    projector_.project_blocks(std::span<const block_id>(batch_), callbacks...);
    for (std::size_t i : moving_) parameters_[i].add_(snapshots_[i]);
  }

  /// Gives every parameter of `stepped_` its weights from before the step.
  void restore_snapshots() {
    for (std::size_t i : stepped_) parameters_[i].copy_(snapshots_[i]);
  }

  ::torch::optim::Optimizer& optimizer_;
  reference_fn reference_;
  Projector projector_;
  placement where_;
  std::vector<at::Tensor> parameters_;
  std::vector<std::string> names_;
  std::vector<block_id> ids_;
  std::vector<at::Tensor> snapshots_;  // update placement: the parameters before the inner step
  std::vector<std::size_t> stepped_;   // update placement: the parameters with a gradient,
  std::vector<std::size_t> moving_;    // and those of them with a non-empty subspace
  std::vector<block_id> batch_;        // the blocks of one batched projection
  bool projected_ = false;             // project() ran since the last step()
  bool in_reference_pass_ = false;     // the reference closure is running
  hook_set hooks_;                     // last: removed before anything the hooks use goes
};

}  // namespace ogpsa::torch
