#pragma once
/// \file
/// `projector_handle`: one projector behind a virtual interface, whatever its estimator, rule and
/// element types, so that Python can choose them at run time. The extension compiles one
/// `projector_model` per combination (see factory.hpp); everything above this interface (the
/// operators, the Python package) is written once.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Dict.h>
#include <ATen/core/Tensor.h>

#include "settings.hpp"

namespace ogpsa::python {

/// Columns of the table `project` returns when asked for diagnostics, one row per listed block.
enum projection_column : std::int64_t {
  rank_column,
  gradient_norm_column,
  projected_norm_column,
  removed_fraction_column,
  cosine_before_column,
  cosine_after_column,
  scale_column,
  non_finite_column,
  projection_columns,
};

/// Columns of the table `finish_reference_pass` returns, one row per block.
enum refresh_column : std::int64_t {
  refreshed_rank_column,
  dropped_column,
  captured_energy_column,
  refresh_columns
};

using tensor_dict = c10::Dict<std::string, at::Tensor>;

/// A projector of any policies and element types (CPU tensors). Blocks are numbered from 0 in
/// registration order. Every function either does all it says or, throwing, changes nothing.
class projector_handle {
 public:
  virtual ~projector_handle() = default;

  /// Registers a parameter of these sizes and strides (the buffer is bound at each projection).
  virtual std::int64_t add_block(const std::string& name, std::vector<std::int64_t> sizes,
                                 std::vector<std::int64_t> strides, family kind) = 0;
  virtual void begin_reference_pass() = 0;
  virtual void feed(std::int64_t block, const at::Tensor& gradient, std::int64_t set) = 0;
  virtual void feed_columns(std::int64_t block, const at::Tensor& columns, std::int64_t set) = 0;
  /// Commits the pass; returns the `refresh_column` table.
  virtual at::Tensor finish_reference_pass() = 0;
  virtual void abandon_reference_pass() noexcept = 0;
  /// Projects `gradients[i]` as block `blocks[i]`, in place, in one backend call; returns the
  /// `projection_column` table (no rows without diagnostics).
  virtual at::Tensor project(const std::vector<std::int64_t>& blocks,
                             const std::vector<at::Tensor>& gradients, bool count_step, bool diagnostics) = 0;
  virtual void count_step() noexcept = 0;
  virtual bool refresh_due() const = 0;
  virtual bool ready() const noexcept = 0;
  /// steps, steps since the last refresh, refreshes.
  virtual std::vector<std::int64_t> counters() const = 0;
  /// The block's basis, rank x dimension (one direction per row); 0 x dimension before any estimate.
  virtual at::Tensor basis(std::int64_t block) const = 0;
  /// Every setting as the projector holds it (estimator.*, rule.*, refresh_every, dtypes).
  virtual options settings() const = 0;
  virtual tensor_dict export_state() = 0;
  virtual void import_state(const tensor_dict& state) = 0;
};

/// The projector with these policies and element types.
/// \throws invalid_argument for a policy's invalid hyper-parameters or an element pair the
///         extension is not compiled for.
std::unique_ptr<projector_handle> make_projector(const estimator_choice& estimator, const rule_choice& rule,
                                                 const any_schedule& schedule, dtype gradient, dtype basis);

/// `make_projector` for one estimator type, compiled in its own translation unit (make_*.cpp).
template <class Estimator>
std::unique_ptr<projector_handle> make_for(const Estimator& estimator, const rule_choice& rule,
                                           const any_schedule& schedule, dtype gradient, dtype basis);

}  // namespace ogpsa::python
