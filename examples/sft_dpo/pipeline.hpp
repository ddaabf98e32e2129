#pragma once
// Pipelines of stages (base -> SFT, base -> DPO, base -> SFT -> DPO) for every method and seed,
// with every finished stage kept: in memory for this run, and on disk as a checkpoint so an
// interrupted run resumes where it stopped and never recomputes a finished stage.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "training.hpp"

namespace sft_dpo {

/// The stages of a pipeline named "sft", "dpo" or "sft-dpo". \throws std::invalid_argument otherwise.
std::vector<stage_kind> stages_of(const std::string& pipeline);

class runner {
 public:
  runner(const options& o, const dataset& data);

  /// The base model of a seed.
  const stage_result& base(int seed);
  /// The last stage of `chain` (e.g. {sft, dpo}) run by `m` from the base model of `seed`.
  const stage_result& stage(const method& m, const std::vector<stage_kind>& chain, int seed);

  /// Stages trained (not loaded) so far in this run.
  int trained() const { return trained_; }

 private:
  struct entry {
    std::string key;
    stage_result result;
  };
  const entry& base_entry(int seed);
  const entry& stage_entry(const method& m, const std::vector<stage_kind>& chain, int seed);
  const entry& cached(const std::string& key, const std::string& label, const std::function<stage_result()>& make);
  stage_result merged(const stage_result& tuned, const weights& base) const;

  const options& options_;
  const dataset& data_;
  std::filesystem::path checkpoints_;
  std::map<std::string, entry> entries_;  // by key
  int trained_ = 0;
};

}  // namespace sft_dpo
