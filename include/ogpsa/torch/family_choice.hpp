#pragma once
/// \file
/// Choosing each parameter's subspace family (`ogpsa::family`) from its name and tensor: the one
/// line of user code that decides between flat and matrix-side subspaces in `projected_optimizer`.
///
///     {.families = ogpsa::torch::flat_blocks}           // the published form, every estimator
///     {.families = ogpsa::torch::right_for_matrices}    // input-space bases for weights
///     {.families = [](std::string_view name, const at::Tensor& p) {
///        return name.starts_with("lm_head") ? ogpsa::family::flat : ogpsa::torch::right_for_matrices(name, p);
///      }}

#include <functional>
#include <string_view>

#include <ATen/core/Tensor.h>

#include "ogpsa/family.hpp"

namespace ogpsa::torch {

/// Maps a parameter (its name in `named_parameters()` and the tensor) to its block's family.
/// Matrix-side families see the parameter through `matricized_view`: a Linear weight (out x in)
/// as is, a convolution weight as out x (in kh kw).
using family_chooser = std::function<family(std::string_view name, const at::Tensor& parameter)>;

/// Every parameter is one flat block: what the published OGPSA code does, per tensor.
inline family flat_blocks(std::string_view, const at::Tensor&) {
  return family::flat;
}

/// Weights of two or more dimensions get a right (input-space, GPM-style) basis, n x k for a
/// Linear weight of in-features n: memory k x n instead of k x numel. Biases, norm scales and
/// scalars stay flat.
inline family right_for_matrices(std::string_view, const at::Tensor& parameter) {
  return parameter.dim() >= 2 ? family::right : family::flat;
}

}  // namespace ogpsa::torch
