// The SFT -> DPO pipeline: measures the alignment tax of safety tuning on a small language model
// and how much of it OGPSA (through <ogpsa/torch.hpp>) and the usual baselines give back.
// See examples/sft_dpo/README.md and --help.
#include <chrono>
#include <cstdio>
#include <exception>

#include <torch/torch.h>

#include "cli.hpp"
#include "pipeline.hpp"
#include "report.hpp"

namespace {

using namespace sft_dpo;

/// The points of `pipeline` run by `m`: the base model, then every stage's sweep points.
run_record run_pipeline(runner& r, const std::string& pipeline, const method& m, int seed) {
  run_record record{pipeline, m.name, seed, {}, 0};
  const stage_result& base = r.base(seed);
  record.points.push_back({"base", base.points.back().step, base.scores()});
  std::vector<stage_kind> chain;
  for (stage_kind kind : stages_of(pipeline)) {
    chain.push_back(kind);
    const stage_result& s = r.stage(m, chain, seed);
    for (const auto& p : s.points) record.points.push_back({name_of(kind), p.step, p.scores});
    record.seconds += s.timing.seconds;
  }
  return record;
}

void report_overheads(const std::vector<method>& methods, runner& r, const dataset& data, const options& o) {
  if (o.overhead_steps == 0) return;
  std::printf("\nProjection cost per SFT step (medians of %lld interleaved steps with the same batches): the update\n"
              "part of a step (clipping, projection, AdamW) against plain AdamW on the same parameters, as a share\n"
              "of a whole naive step; a refresh (reference pass and estimate) is timed apart.\n",
              static_cast<long long>(o.overhead_steps));
  for (const auto& m : methods) {
    if (m.kind != method_kind::ogpsa) continue;
    const overhead h = measure_overhead(m, r.base(1).output(), data, o, static_cast<int>(o.overhead_steps));
    std::printf("  %-16s naive step %6.2f ms; update %5.2f ms, plain %5.2f ms: overhead %+5.2f%% of a naive step; "
                "one refresh %6.1f ms (%.1f naive steps)\n",
                m.name.c_str(), h.naive_step_ms, h.method_update_ms, h.plain_update_ms, 100 * h.fraction(),
                h.refresh_ms, h.refresh_ms / h.naive_step_ms);
  }
}

int run(const options& o) {
  const auto started = std::chrono::steady_clock::now();
  if (o.threads > 0) at::set_num_threads(o.threads);
  const dataset data = assemble(o.data, o.out / "data");
  const auto families = capability_families(data.evaluation);
  const auto methods = chosen_methods(o);
  std::printf("Data: %zu base, %zu SFT, %zu DPO, %zu reference, %zu evaluation records (JSON in %s)\n",
              data.base.size(), data.sft.size(), data.dpo.size(), data.reference.size(), data.evaluation.size(),
              (o.out / "data").string().c_str());
  std::fflush(stdout);
  runner r(o, data);
  std::vector<run_record> runs;
  for (const auto& pipeline : o.pipelines)
    for (const auto& m : methods)
      for (int seed = 1; seed <= o.seeds; ++seed) runs.push_back(run_pipeline(r, pipeline, m, seed));

  print_table(runs, families);
  const std::string main_pipeline = o.pipelines.back();
  print_goal(runs, main_pipeline, recommended_method, "published");
  report_overheads(methods, r, data, o);
  write_results_csv(o.out / "results.csv", runs, families);
  write_sweep_csv(o.out / "sweep.csv", runs, families);
  write_pareto_svg(o.out / "pareto.svg", runs, main_pipeline);
  const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() / 60;
  std::printf("\n%d stage(s) trained in this run, %.1f min in all, %d thread(s).\n", r.trained(), minutes,
              at::get_num_threads());
  std::printf("Results: %s, %s, %s\n", (o.out / "results.csv").string().c_str(), (o.out / "sweep.csv").string().c_str(),
              (o.out / "pareto.svg").string().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  sft_dpo::options o;
  if (const auto code = sft_dpo::parse_command_line(argc, argv, o)) return *code;
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
