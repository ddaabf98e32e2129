#pragma once
// The methods compared: naive tuning, OGPSA as published, the library's stronger OGPSA variants,
// and the paper's other baselines (replay, merging, LoRA).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "options.hpp"

namespace sft_dpo {

enum class method_kind { naive, ogpsa, replay, merge, lora };

/// Where an OGPSA method's capability subspace comes from.
enum class basis_source {
  mean_gradient,     ///< the reference set's mean gradient, one direction per tensor (published)
  batch_gradients,   ///< the top singular directions of per-batch reference gradients
  layer_inputs,      ///< the top principal directions of each linear layer's inputs (GPM)
};

struct projection_settings {
  basis_source source = basis_source::mean_gradient;
  bool matrix_side = false;           ///< right (input-space) bases for weight matrices, else flat
  std::optional<std::int64_t> rank;   ///< fixed rank, or (unset) the energy threshold
  double energy = 0;
  bool update_space = false;          ///< project AdamW's step, not only the gradient
  std::int64_t refresh_sft = 30, refresh_dpo = 5;
};

struct method {
  std::string name;
  std::string summary;
  method_kind kind = method_kind::naive;
  projection_settings projection;
};

/// The OGPSA configuration the example recommends (the Goal is checked for it).
inline constexpr const char* recommended_method = "gpm";

/// Every method, in the order of the results table.
std::vector<method> all_methods(const options& o);

/// The methods named in `o.methods` (all when empty). \throws std::invalid_argument for an unknown name.
std::vector<method> chosen_methods(const options& o);

}  // namespace sft_dpo
