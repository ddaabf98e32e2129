#pragma once
// The results: a table on the terminal, results.csv (one row per pipeline, method and seed),
// sweep.csv (every evaluated point) and pareto.svg (utility against safety, a curve per method).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "metrics.hpp"

namespace sft_dpo {

/// One evaluated model along a pipeline.
struct curve_point {
  std::string stage;  ///< "base", "sft" or "dpo"
  std::int64_t step = 0;
  metrics scores;
};

/// One pipeline run by one method with one seed: its points from the base model on.
struct run_record {
  std::string pipeline;
  std::string method;
  int seed = 0;
  std::vector<curve_point> points;  ///< the base model first, the pipeline's output last
  double seconds = 0;               ///< training and evaluation time of its stages in this run
};

/// Prints, per pipeline, every method's scores after each stage (mean and spread over seeds).
void print_table(const std::vector<run_record>& runs, const std::vector<std::string>& families);

/// Prints how `candidate` and `published` compare with naive tuning on `pipeline`, against the
/// Goal: lose at most half of naive's utility loss, reach 90% of its safety gain, over-refuse no more.
void print_goal(const std::vector<run_record>& runs, const std::string& pipeline, const std::string& candidate,
                const std::string& published);

void write_results_csv(const std::filesystem::path& file, const std::vector<run_record>& runs,
                       const std::vector<std::string>& families);
void write_sweep_csv(const std::filesystem::path& file, const std::vector<run_record>& runs,
                     const std::vector<std::string>& families);
/// Utility against safety for `pipeline`, each method a curve through its points (seed means).
void write_pareto_svg(const std::filesystem::path& file, const std::vector<run_record>& runs,
                      const std::string& pipeline);

}  // namespace sft_dpo
