#pragma once
/// \file
/// The LibTorch integration: the whole CPU library plus
///
/// | header                               | provides |
/// |--------------------------------------|----------|
/// | `ogpsa/torch/tensor_view.hpp`        | `view`, `flat_view`, `matricized_view` of `at::Tensor` (float, double, bf16, fp16; CPU or CUDA memory) |
/// | `ogpsa/torch/family_choice.hpp`      | `family_chooser`, `flat_blocks`, `right_for_matrices` |
/// | `ogpsa/torch/reference_pass.hpp`     | `reference_pass`, handed to the reference closure |
/// | `ogpsa/torch/serialize.hpp`          | `write_state` / `read_state`: a projector's state in a LibTorch archive |
/// | `ogpsa/torch/projected_optimizer.hpp`| `projected_optimizer`: any `torch::optim::Optimizer`, projected |
///
/// Needs LibTorch (link `ogpsa::torch`); compiles with a host compiler and includes no CUDA header.

#include "ogpsa/ogpsa.hpp"
#include "ogpsa/torch/family_choice.hpp"
#include "ogpsa/torch/projected_optimizer.hpp"
#include "ogpsa/torch/reference_pass.hpp"
#include "ogpsa/torch/serialize.hpp"
#include "ogpsa/torch/tensor_view.hpp"
