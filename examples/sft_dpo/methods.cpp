#include "methods.hpp"

#include <algorithm>
#include <stdexcept>

namespace sft_dpo {

std::vector<method> all_methods(const options& o) {
  using enum basis_source;
  const projection_settings published{mean_gradient, false, std::nullopt, 0, false, o.refresh_sft, o.refresh_dpo};
  projection_settings flat_rank = published, side_grad = published, gpm = published;
  flat_rank.source = batch_gradients;
  flat_rank.rank = o.rank;
  side_grad.source = batch_gradients;
  side_grad.matrix_side = true;
  side_grad.energy = o.energy;
  gpm.source = layer_inputs;
  gpm.matrix_side = true;
  gpm.energy = o.energy;
  projection_settings gpm_update = gpm;
  gpm_update.update_space = true;
  projection_settings gpm_update_fast = gpm_update;
  gpm_update_fast.refresh_sft = gpm_update_fast.refresh_dpo = o.fast_refresh;
  return {
      {"naive", "AdamW on the safety data alone", method_kind::naive, {}},
      {"published", "OGPSA as published: per tensor, the mean reference gradient (rank 1), gradients projected",
       method_kind::ogpsa, published},
      {"flat-rank", "per tensor, the top-rank directions of per-batch reference gradients", method_kind::ogpsa, flat_rank},
      {"side-grad", "input-space bases of the weights from per-batch reference gradients, rank by energy",
       method_kind::ogpsa, side_grad},
      {"gpm", "input-space bases from the layers' inputs on the reference set (GPM), rank by energy; recommended",
       method_kind::ogpsa, gpm},
      {"gpm-update", "gpm, projecting AdamW's update instead of the gradient", method_kind::ogpsa, gpm_update},
      {"gpm-update-fast", "gpm-update, refreshed more often", method_kind::ogpsa, gpm_update_fast},
      {"replay", "general reference data mixed into every safety batch", method_kind::replay, {}},
      {"merge", "naive tuning's weights averaged with the base weights", method_kind::merge, {}},
      {"lora", "low-rank adapters on every linear layer, base weights frozen", method_kind::lora, {}},
  };
}

std::vector<method> chosen_methods(const options& o) {
  const auto all = all_methods(o);
  if (o.methods.empty()) return all;
  std::vector<method> out;
  for (const auto& name : o.methods) {
    const auto it = std::find_if(all.begin(), all.end(), [&](const method& m) { return m.name == name; });
    if (it == all.end()) throw std::invalid_argument("sft_dpo: unknown method '" + name + "'");
    out.push_back(*it);
  }
  return out;
}

}  // namespace sft_dpo
