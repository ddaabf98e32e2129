#include "cli.hpp"

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "methods.hpp"

namespace sft_dpo {

namespace {

std::string method_list(const options& o) {
  std::string s = "Methods (--methods):\n";
  for (const auto& m : all_methods(o)) s += "  " + m.name + std::string(18 - m.name.size(), ' ') + m.summary + "\n";
  return s;
}

void add_stage(CLI::App& app, const std::string& stage, stage_settings& s, const std::string& what) {
  app.add_option("--" + stage + "-steps", s.steps, "optimizer steps of " + what)->check(CLI::PositiveNumber)->group("Training");
  app.add_option("--" + stage + "-batch", s.batch, "examples (DPO: preference pairs) per step of " + what)
      ->check(CLI::PositiveNumber)
      ->group("Training");
  app.add_option("--" + stage + "-lr", s.learning_rate, "AdamW learning rate of " + what)
      ->check(CLI::PositiveNumber)
      ->group("Training");
}

}  // namespace

std::optional<int> parse_command_line(int argc, char** argv, options& o) {
  CLI::App app{
      "The alignment tax of safety tuning, and how much of it OGPSA gives back.\n"
      "Trains a small byte-level transformer on general capabilities (arithmetic, facts about synthetic\n"
      "entities, format instructions) and compliant answers to harmful requests, then safety-tunes it\n"
      "(SFT, DPO, SFT -> DPO) with every method, evaluating utility, safety and over-refusal after each\n"
      "stage. Results go to results.csv, sweep.csv and pareto.svg in --out; finished stages are kept\n"
      "in --out/checkpoints, so a rerun resumes where the last one stopped."};
  app.option_defaults()->always_capture_default();
  app.footer(method_list(o));
  std::string out = o.out.string(), base, sft, dpo, reference, evaluation;
  bool list = false;

  app.add_option("--pipelines,--stages", o.pipelines, "stage sequences to run after base training: sft, dpo, sft-dpo")
      ->delimiter(',')
      ->check(CLI::IsMember({"sft", "dpo", "sft-dpo"}));
  std::vector<std::string> names;
  for (const auto& m : all_methods(o)) names.push_back(m.name);
  app.add_option("--methods", o.methods, "methods to compare, comma-separated (default: all, see below)")
      ->delimiter(',')
      ->check(CLI::IsMember(names));
  app.add_option("--seeds", o.seeds, "number of seeds (1, 2, ..., n); tables show mean and spread")->check(CLI::PositiveNumber);
  app.add_option("--out", out, "folder for results, written data and checkpoints");
  app.add_option("--threads", o.threads, "LibTorch intra-op threads (0: LibTorch's default)")->check(CLI::NonNegativeNumber);
  app.add_flag("--fresh", o.fresh, "retrain every stage, ignoring checkpoints");
  app.add_flag("--list-methods", list, "print the methods and exit");

  app.add_option("--base-data", base, "SFT-format JSON for base training (default: the built-in data)")->group("Data")->check(CLI::ExistingFile);
  app.add_option("--sft-data", sft, "SFT-format JSON for safety SFT")->group("Data")->check(CLI::ExistingFile);
  app.add_option("--dpo-data", dpo, "DPO-format JSON (prompt/chosen/rejected) for the DPO stage")->group("Data")->check(CLI::ExistingFile);
  app.add_option("--reference-data", reference, "SFT-format JSON of general data: OGPSA's reference set, replay's data")
      ->group("Data")
      ->check(CLI::ExistingFile);
  app.add_option("--eval-data", evaluation,
                 "SFT-format JSON with a category per record: harmful, benign or a capability family")
      ->group("Data")
      ->check(CLI::ExistingFile);

  add_stage(app, "base", o.base, "base training");
  add_stage(app, "sft", o.sft, "safety SFT");
  add_stage(app, "dpo", o.dpo, "DPO");
  app.add_option("--beta", o.beta, "DPO's beta (strength of the pull towards the reference model)")->check(CLI::PositiveNumber)->group("Training");
  app.add_option("--chosen-nll", o.chosen_nll, "weight of the chosen answers' per-token likelihood term in DPO")
      ->check(CLI::NonNegativeNumber)
      ->group("Training");
  app.add_option("--clip", o.clip, "gradient-norm clipping")->check(CLI::PositiveNumber)->group("Training");
  app.add_option("--sweep-points", o.sweep_points, "evaluations per safety stage (the points of each curve)")
      ->check(CLI::PositiveNumber)
      ->group("Training");
  app.add_option("--width", o.model.width, "model width")->check(CLI::PositiveNumber)->group("Model");
  app.add_option("--layers", o.model.layers, "transformer blocks")->check(CLI::PositiveNumber)->group("Model");
  app.add_option("--heads", o.model.heads, "attention heads (must divide the width)")->check(CLI::PositiveNumber)->group("Model");
  app.add_option("--mlp", o.model.mlp, "hidden units of each block's MLP")->check(CLI::PositiveNumber)->group("Model");

  app.add_option("--reference-batches", o.reference_batches, "batches the reference set is split into (samples per refresh)")
      ->check(CLI::PositiveNumber)
      ->group("OGPSA");
  app.add_option("--rank", o.rank, "rank of fixed-rank bases (flat-rank)")->check(CLI::PositiveNumber)->group("OGPSA");
  app.add_option("--energy", o.energy, "energy threshold of energy-chosen bases (side-grad, gpm*), in (0, 1]")
      ->check(CLI::Range(1e-6, 1.0))
      ->group("OGPSA");
  app.add_option("--refresh", o.refresh_sft, "SFT steps between refreshes of the subspace (published: 30)")->check(CLI::PositiveNumber)->group("OGPSA");
  app.add_option("--dpo-refresh", o.refresh_dpo, "DPO steps between refreshes (published: 5)")->check(CLI::PositiveNumber)->group("OGPSA");
  app.add_option("--fast-refresh", o.fast_refresh, "steps between refreshes of the *-fast methods")->check(CLI::PositiveNumber)->group("OGPSA");
  app.add_option("--overhead-steps", o.overhead_steps, "steps timed per OGPSA method for the projection overhead (0: skip)")
      ->check(CLI::NonNegativeNumber)
      ->group("OGPSA");

  app.add_option("--replay-fraction", o.replay_fraction, "replay: general examples per safety example")->check(CLI::PositiveNumber)->group("Baselines");
  app.add_option("--merge-alpha", o.merge_alpha, "merge: weight of the tuned model (base gets 1 - alpha)")->check(CLI::Range(0.0, 1.0))->group("Baselines");
  app.add_option("--lora-rank", o.lora_rank, "LoRA adapters' rank")->check(CLI::PositiveNumber)->group("Baselines");
  app.add_option("--lora-alpha", o.lora_alpha, "LoRA's alpha (adapter scale alpha / rank)")->check(CLI::PositiveNumber)->group("Baselines");
  app.add_option("--lora-lr-scale", o.lora_lr_scale, "LoRA's learning rate relative to the stage's")->check(CLI::PositiveNumber)->group("Baselines");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (list) {
    std::fputs(method_list(o).c_str(), stdout);
    return 0;
  }
  if (o.rank > o.reference_batches) {  // flat bases see one reference gradient per batch
    std::fprintf(stderr, "--rank %lld exceeds --reference-batches %lld: a flat basis cannot have more directions "
                 "than there are reference batches\n", static_cast<long long>(o.rank),
                 static_cast<long long>(o.reference_batches));
    return 2;
  }
  o.out = out;
  o.data = {base, sft, dpo, reference, evaluation};
  return std::nullopt;
}

}  // namespace sft_dpo
