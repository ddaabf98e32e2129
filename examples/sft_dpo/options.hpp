#pragma once
// Every setting of the pipeline, with the defaults the demo runs; cli.cpp documents each one.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "data.hpp"

namespace sft_dpo {

struct model_config {
  std::int64_t context = 96;  ///< longest sequence, in tokens
  std::int64_t width = 64;
  std::int64_t layers = 2;
  std::int64_t heads = 4;
  std::int64_t mlp = 256;
};

/// One training stage's optimization settings (AdamW, no weight decay).
struct stage_settings {
  std::int64_t steps = 0;
  std::int64_t batch = 0;
  double learning_rate = 0;
};

struct options {
  std::vector<std::string> pipelines{"sft-dpo"};  ///< of "sft", "dpo", "sft-dpo"
  std::vector<std::string> methods;               ///< empty: all
  int seeds = 1;
  data_files data;
  std::filesystem::path out = ".";
  int threads = 0;  ///< 0: LibTorch's default
  bool fresh = false;

  model_config model;
  stage_settings base{2000, 32, 3e-3};
  stage_settings sft{150, 16, 3e-4};
  stage_settings dpo{100, 16, 5e-5};
  // DPO: beta 0.5 and a heavy likelihood term on the chosen answers keep DPO from undoing the
  // refusals SFT taught (with beta 0.1 and weight 1 it cut refusals from 0.83 to 0.62; with these,
  // to 0.79, while over-refusal falls from 0.57 to 0.28; see examples/sft_dpo/README.md).
  double beta = 0.5;
  double chosen_nll = 10.0;  ///< weight of the likelihood term on chosen answers in DPO
  double clip = 1.0;         ///< gradient-norm clipping
  std::int64_t sweep_points = 3;

  // OGPSA
  std::int64_t reference_batches = 8;  ///< the reference set is split into this many batches
  std::int64_t rank = 8;
  double energy = 0.8;  ///< 0.95 keeps nearly every input direction: safety then cannot be learned
  std::int64_t refresh_sft = 30;
  std::int64_t refresh_dpo = 5;
  std::int64_t fast_refresh = 5;
  std::int64_t overhead_steps = 20;

  // baselines
  double replay_fraction = 0.5;
  double merge_alpha = 0.5;
  std::int64_t lora_rank = 8;
  double lora_alpha = 16;
  double lora_lr_scale = 3;  ///< 10 wrecked the model (utility 0.07 after SFT)
};

}  // namespace sft_dpo
