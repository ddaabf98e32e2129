#pragma once
/// \file
/// `reference_pass`: what a `projected_optimizer`'s reference closure is handed to feed the
/// capability objective's gradients into the projector. Gradients are taken with
/// `torch::autograd::grad`, so they never touch the parameters' `.grad()` buffers that the
/// optimizer steps with.

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <torch/autograd.h>
#include <torch/types.h>

#include "ogpsa/config.hpp"
#include "ogpsa/error.hpp"

namespace ogpsa::torch {

template <class Projector>
class projected_optimizer;

/// One refresh of the capability subspace, seen from the reference closure:
///
///     [&](ogpsa::torch::reference_pass& pass) {
///       for (const auto& batch : reference_batches) pass.feed(lm_loss(model, batch));       // set 0
///       for (const auto& batch : second_reference_set) pass.feed(lm_loss(model, batch), 1);  // set 1
///     }
///
/// or, GPM-style, `pass.feed_vectors(layer->weight, inputs_of_layer)` for right blocks.
///
/// Each `feed` is one reference sample for the estimator: `mean_gradient` averages the samples of a
/// set into one direction per set (the published method: 1 or 2 sets), `exact_svd` keeps the top
/// singular directions of all of them. The closure runs at the current weights; it must not call
/// `backward()` on the wrapped parameters (the wrapper checks that no `.grad()` changed, and
/// throws otherwise). Putting the model in eval mode for the pass, if wanted, is up to the closure.
class reference_pass {
 public:
  /// Adds the gradient of scalar `loss` with respect to every registered parameter as one sample
  /// of reference set `set`. A parameter `loss` does not depend on contributes a zero gradient.
  /// \throws invalid_argument for an undefined loss or one that does not require grad,
  ///         shape_error for a loss with more than one element, and what the projector's `feed`
  ///         throws (numeric_error for NaN/Inf: the whole pass is rejected).
  void feed(const at::Tensor& loss, index_t set = 0) {
    constexpr const char* where = "ogpsa::torch::reference_pass::feed";
    OGPSA_REQUIRE(loss.defined(), invalid_argument, where, "the reference loss is undefined");
    OGPSA_REQUIRE(loss.numel() == 1, shape_error, where,
                  "the reference loss must have one element, got sizes " << loss.sizes());
    OGPSA_REQUIRE(loss.requires_grad(), invalid_argument, where,
                  "the reference loss does not require grad (computed under a NoGradGuard, or from "
                  "frozen parameters only?)");
    feed_gradients(::torch::autograd::grad({loss}, parameters_, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                           /*create_graph=*/false, /*allow_unused=*/true),
                   set);
  }

  /// Adds reference gradients computed elsewhere (e.g. averaged across data-parallel ranks), one
  /// per registered parameter in `parameters()` order, as one sample of set `set`; an undefined
  /// tensor stands for a zero gradient.
  /// \throws shape_error for a wrong count or sizes, invalid_argument for a wrong dtype or device.
  void feed_gradients(std::vector<at::Tensor> gradients, index_t set = 0) {
    constexpr const char* where = "ogpsa::torch::reference_pass::feed_gradients";
    OGPSA_REQUIRE(
        gradients.size() == parameters_.size(), shape_error, where,
        "got " << gradients.size() << " gradients for " << parameters_.size() << " registered parameters");
    for (std::size_t i = 0; i < gradients.size(); ++i)
      feed_gradient_(i, laid_out_like_parameter(std::move(gradients[i]), i), set);
  }

  /// Adds vectors of `parameter`'s target space directly, one per row of `vectors` (N x dimension,
  /// any N), instead of gradients: for a right block (a Linear weight, out x in) the layer's inputs
  /// on the reference set, which is how GPM estimates input spaces; for a left block (e.g. an
  /// embedding table, V x d) vectors of length V. The estimator sees them as it sees the
  /// target-space vectors of a fed gradient (`projector::feed_columns`).
  /// \throws invalid_argument when `parameter` is not registered or `vectors` has another dtype or
  ///         device, shape_error unless `vectors` is N x the block's dimension.
  void feed_vectors(const at::Tensor& parameter, const at::Tensor& vectors, index_t set = 0) {
    constexpr const char* where = "ogpsa::torch::reference_pass::feed_vectors";
    const std::size_t i = index_of(parameter, where);
    OGPSA_REQUIRE(vectors.dim() == 2, shape_error, where,
                  "the vectors for parameter '" << names_[i]
                                                << "' must be a matrix (one vector per row), got sizes "
                                                << vectors.sizes());
    check_placement(vectors, i, "the vectors", where);
    feed_columns_(i, vectors.contiguous().t(), set);
  }

  /// The registered parameters, in registration order, and their names.
  const std::vector<at::Tensor>& parameters() const noexcept { return parameters_; }
  const std::vector<std::string>& names() const noexcept { return names_; }

 private:
  template <class Projector>
  friend class projected_optimizer;

  /// Hands a parameter's gradient, or its target-space vectors as columns, to the projector.
  using sink = std::function<void(std::size_t parameter, const at::Tensor& data, index_t set)>;

  reference_pass(const std::vector<std::string>& names, const std::vector<at::Tensor>& parameters,
                 sink feed_gradient, sink feed_columns)
      : names_(names),
        parameters_(parameters),
        feed_gradient_(std::move(feed_gradient)),
        feed_columns_(std::move(feed_columns)) {}

  std::size_t index_of(const at::Tensor& parameter, const char* where) const {
    for (std::size_t i = 0; i < parameters_.size(); ++i)
      if (parameters_[i].is_same(parameter)) return i;
    OGPSA_FAIL(invalid_argument, where,
               "the tensor (sizes " << (parameter.defined() ? parameter.sizes() : at::IntArrayRef{})
                                    << ") is not one of the " << parameters_.size()
                                    << " registered parameters");
  }

  /// Throws unless `t` has parameter `i`'s dtype and device.
  void check_placement(const at::Tensor& t, std::size_t i, const char* what, const char* where) const {
    const at::Tensor& p = parameters_[i];
    OGPSA_REQUIRE(t.scalar_type() == p.scalar_type() && t.device() == p.device(), invalid_argument, where,
                  what << " for parameter '" << names_[i] << "': " << t.scalar_type() << " on " << t.device()
                       << ", but the parameter is " << p.scalar_type() << " on " << p.device());
  }

  /// The gradient of parameter `i`, checked, with the parameter's strides: a flat block reads
  /// memory order, which must then mean the same element in reference and training gradients
  /// (autograd lays out `.grad()` like the parameter, but `autograd::grad` results may differ).
  at::Tensor laid_out_like_parameter(at::Tensor g, std::size_t i) const {
    constexpr const char* where = "ogpsa::torch::reference_pass::feed_gradients";
    const at::Tensor& p = parameters_[i];
    if (!g.defined()) return at::zeros_like(p);
    OGPSA_REQUIRE(g.sizes() == p.sizes(), shape_error, where,
                  "the gradient for parameter '" << names_[i] << "' has sizes " << g.sizes()
                                                 << ", the parameter " << p.sizes());
    check_placement(g, i, "the gradient", where);
    if (g.strides() == p.strides()) return g;
    return at::empty_like(p).copy_(g);
  }

  const std::vector<std::string>& names_;
  const std::vector<at::Tensor>& parameters_;
  sink feed_gradient_;
  sink feed_columns_;
};

}  // namespace ogpsa::torch
