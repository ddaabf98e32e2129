// The benchmark binary: Google Benchmark's flags, plus --ogpsa_summary=<file.md>, which writes the
// markdown summary of the run (needs --benchmark_out=<file.json>, which it writes as well), and
// --ogpsa_cache_bytes=<n>, the cache size every case's data is replicated to exceed twice over
// (default: the last-level cache's size; 0 for one copy of every case, see `rotation` in bench.hpp),
// and --ogpsa_threads=<n>, the threads every implementation runs on (default: every hardware thread).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "bench.hpp"
#include "summary.hpp"

namespace ogpsa::bench {

namespace {

int kind_rank(const std::string& kind) {
  const char* order[] = {"roofline", "flat", "matrix", "model"};
  const auto it = std::find(std::begin(order), std::end(order), kind);
  return static_cast<int>(it - std::begin(order));
}

/// ogpsa first, then the peers, then reference runs of ogpsa (the model as one block).
int implementation_rank(const std::string& implementation) {
  return implementation == "ogpsa" ? 0 : implementation.rfind("ogpsa", 0) == 0 ? 2 : 1;
}

std::string name_of(const entry& e) {
  return e.kind + "/" + e.implementation + (e.variant.empty() ? "" : "/" + e.variant);
}

}  // namespace

void register_cases() {
  using case_key = std::tuple<int, std::string, std::string, std::vector<std::int64_t>>;
  std::vector<case_key> cases;
  for (const entry& e : entries())
    for (const auto& a : e.args) {
      case_key c{kind_rank(e.kind), e.kind, e.variant, a};
      if (std::find(cases.begin(), cases.end(), c) == cases.end()) cases.push_back(c);
    }
  std::stable_sort(cases.begin(), cases.end(),
                   [](const case_key& a, const case_key& b) { return std::get<0>(a) < std::get<0>(b); });
  std::vector<const entry*> ordered;
  for (const entry& e : entries()) ordered.push_back(&e);
  std::stable_sort(ordered.begin(), ordered.end(), [](const entry* a, const entry* b) {
    return implementation_rank(a->implementation) < implementation_rank(b->implementation);
  });
  for (const auto& [rank, kind, variant, args] : cases)
    for (const entry* e : ordered)
      if (e->kind == kind && e->variant == variant && std::find(e->args.begin(), e->args.end(), args) != e->args.end())
        benchmark::RegisterBenchmark(name_of(*e).c_str(), e->run)
            ->Args(args)
            ->ArgNames(e->arg_names)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
}

}  // namespace ogpsa::bench

int main(int argc, char** argv) {
  const std::string summary_flag = "--ogpsa_summary=", cache_flag = "--ogpsa_cache_bytes=",
                    threads_flag = "--ogpsa_threads=";
  std::string summary;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], summary_flag.c_str(), summary_flag.size()) == 0) {
      summary = argv[i] + summary_flag.size();
    } else if (std::strncmp(argv[i], cache_flag.c_str(), cache_flag.size()) == 0) {
      char* end = nullptr;
      const double bytes = std::strtod(argv[i] + cache_flag.size(), &end);
      if (*end != '\0' || bytes < 0) {
        std::cerr << "ogpsa_bench: " << cache_flag << " needs a number of bytes >= 0, got '"
                  << argv[i] + cache_flag.size() << "'\n";
        return 1;
      }
      ogpsa::bench::cache_bytes() = bytes;
    } else if (std::strncmp(argv[i], threads_flag.c_str(), threads_flag.size()) == 0) {
      char* end = nullptr;
      const long n = std::strtol(argv[i] + threads_flag.size(), &end, 10);
      if (*end != '\0' || n < 1 || n > 4096) {
        std::cerr << "ogpsa_bench: " << threads_flag << " needs a thread count from 1 to 4096, got '"
                  << argv[i] + threads_flag.size() << "'\n";
        return 1;
      }
      threads = static_cast<int>(n);
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  ogpsa::bench::use_threads(threads);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  ogpsa::bench::register_cases();
  if (summary.empty()) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    ogpsa::bench::summary_reporter reporter(summary);
    benchmark::RunSpecifiedBenchmarks(nullptr, &reporter);
    std::cout << "summary written to " << summary << '\n';
  }
  benchmark::Shutdown();
}
