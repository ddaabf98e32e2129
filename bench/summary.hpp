#pragma once
// The markdown summary of a benchmark run: writes Google Benchmark's JSON (it is the run's file
// reporter) and, from the same runs, a table of rates and ratios and the project's speed targets
// (bench/README.md shows the latest one).

#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace ogpsa::bench {

class summary_reporter : public benchmark::JSONReporter {
 public:
  /// Writes the summary to `path` when the run ends.
  explicit summary_reporter(std::string path) : path_(std::move(path)) {}

  bool ReportContext(const Context& context) override;
  void ReportRuns(const std::vector<Run>& runs) override;
  void Finalize() override;

  /// One benchmark's median (or only) run.
  struct result {
    double seconds = 0;            ///< real time per iteration
    double bytes_per_second = 0;   ///< under the minimal-traffic model; 0 when not reported
    double gradient_elements = 0;  ///< selects the copy roofline of the same size
    std::map<std::string, double> counters;  ///< the user counters, e.g. max_sine and peak_MiB
  };

 private:
  std::string path_;
  std::string machine_;
  std::int64_t repetitions_ = 1;
  std::vector<std::string> order_;  ///< names in the order they ran
  std::map<std::string, result> results_;
};

}  // namespace ogpsa::bench
