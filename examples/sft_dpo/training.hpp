#pragma once
// One training stage: base training, safety SFT or DPO, for one method, with evaluations at the
// sweep points, progress on the terminal, and OGPSA through <ogpsa/torch.hpp>.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <ogpsa/family.hpp>

#include "data.hpp"
#include "evaluation.hpp"
#include "methods.hpp"
#include "model.hpp"
#include "options.hpp"

namespace sft_dpo {

enum class stage_kind { base, sft, dpo };
const char* name_of(stage_kind k);

/// The model after `step` steps of a stage, and its scores.
struct point {
  std::int64_t step = 0;
  metrics scores;
};

struct stage_timing {
  double seconds = 0;          ///< the whole stage, evaluations included
  double refresh_seconds = 0;  ///< OGPSA reference passes
  std::int64_t refreshes = 0;
};

/// A finished stage. Safety stages use a constant learning rate, so the model after s steps of
/// the stage is the model a stage of s steps would give: the points form a sweep over steps.
struct stage_result {
  std::vector<point> points;         ///< at the sweep steps; the last is the stage's output
  std::vector<weights> snapshots;    ///< the weights at each point
  stage_timing timing;
  const weights& output() const { return snapshots.back(); }
  const metrics& scores() const { return points.back().scores; }
};

/// A model with weights `start` (or the initialization of `seed` when empty) ready for a stage of
/// `m`: with LoRA adapters for LoRA; for input-space (GPM) bases, only the linear weights train.
language_model prepare_model(const method& m, const weights& start, const options& o, std::uint64_t seed);

/// AdamW for one stage of a method, wrapped by ogpsa::torch::projected_optimizer for OGPSA methods
/// (the subspace refreshed from the reference set when due, the gradient or the update projected).
class stage_optimizer {
 public:
  stage_optimizer(const method& m, stage_kind kind, language_model& model, const dataset& data, const options& o,
                  double learning_rate);
  ~stage_optimizer();

  void zero_grad();
  void set_learning_rate(double rate);
  /// After backward(): the refresh when due, the projection, gradient clipping and the step.
  void step();
  const stage_timing& timing() const;

  /// A registered parameter and its current basis (dimension x rank; flat: memory order).
  struct subspace {
    std::string name;
    torch::Tensor parameter;
    ogpsa::family kind;
    Eigen::MatrixXf basis;
  };
  /// The projected parameters of an OGPSA method, empty for the others.
  std::vector<subspace> subspaces() const;

  class impl;

 private:
  std::unique_ptr<impl> impl_;
};

/// Trains one stage of `m` (ignored for the base stage) from `start` (empty for the base stage).
/// `label` names the stage in progress lines. Every method of a seed sees the same batches.
stage_result train_stage(stage_kind kind, const method& m, const weights& start, const dataset& data,
                         const options& o, int seed, const std::string& label);

/// Per-step cost of a method's projection, from interleaved SFT steps from `start` that take the
/// same batches: a naive step (forward, backward, AdamW on every parameter), and the optimizer
/// part of a step (after backward) of the method and of plain AdamW on the same parameters. The
/// method refreshes once before the timed steps; that refresh is timed apart.
struct overhead {
  double naive_step_ms = 0;
  double plain_update_ms = 0;   ///< clipping and AdamW on the method's trainable parameters
  double method_update_ms = 0;  ///< the same with the method's projection, refresh excluded
  double refresh_ms = 0;        ///< one reference pass and estimate
  double fraction() const { return (method_update_ms - plain_update_ms) / naive_step_ms; }
};
overhead measure_overhead(const method& m, const weights& start, const dataset& data, const options& o,
                          int steps);

}  // namespace sft_dpo
