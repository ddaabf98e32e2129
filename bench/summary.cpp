// The markdown summary: roofline, every projection case against its peers, and the targets.
#include "summary.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <optional>
#include <sstream>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace ogpsa::bench {

namespace {

/// A benchmark name split as "<kind>/<implementation>/<rest>"; the case is kind/rest.
struct parsed_name {
  std::string kind, implementation, rest;
  std::string case_name() const { return kind + "/" + rest; }
};

parsed_name parse(const std::string& name) {
  parsed_name p;
  const auto first = name.find('/');
  const auto second = first == std::string::npos ? first : name.find('/', first + 1);
  p.kind = name.substr(0, first);
  if (first != std::string::npos) p.implementation = name.substr(first + 1, second - first - 1);
  if (second != std::string::npos) p.rest = name.substr(second + 1);
  return p;
}

bool is_peer(const std::string& implementation) { return implementation.rfind("ogpsa", 0) != 0; }

std::string fixed(double v, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
}

std::string scientific(double v) {
  std::ostringstream os;
  os << std::scientific << std::setprecision(1) << v;
  return os.str();
}

std::string milliseconds(double seconds) { return fixed(seconds * 1e3, seconds < 1e-2 ? 3 : 1); }
std::string gigabytes(double bytes_per_second) { return fixed(bytes_per_second / 1e9, 1); }

std::string yes_no(bool met) { return met ? "**yes**" : "**no**"; }

/// The run's projection cases, with the results of each implementation.
struct projection_case {
  std::string name;
  std::map<std::string, summary_reporter::result> by_implementation;
};

class writer {
 public:
  writer(const std::vector<std::string>& order, const std::map<std::string, summary_reporter::result>& results) {
    for (const std::string& name : order) {
      const parsed_name p = parse(name);
      const auto& r = results.at(name);
      if (p.kind == "roofline") {
        (p.implementation == "copy" ? copy_ : triad_)[r.gradient_elements] = r.bytes_per_second;
      } else if (p.kind == "flat" || p.kind == "matrix" || p.kind == "model") {
        projection_case& c = find_or_add(p.case_name());
        c.by_implementation[p.implementation] = r;
        if (is_peer(p.implementation) && std::find(peers_.begin(), peers_.end(), p.implementation) == peers_.end())
          peers_.push_back(p.implementation);
      } else if (p.kind == "estimators") {
        estimators_[p.rest][p.implementation] = r;
      } else {
        others_.emplace_back(name, r);
      }
    }
  }

  void roofline(std::ostream& os) const {
    os << "## Memory roofline\n\nSTREAM-style copy (b = a: 2 x 4 bytes per element) and triad "
          "(a = b + s c: 3 x 4 bytes), on every core. Every benchmark cycles through copies of its "
          "data that together exceed twice the last-level cache (--ogpsa_cache_bytes), so that rates "
          "are from memory, not from cache.\n\n"
       << "| float elements | copy GB/s | triad GB/s |\n|---:|---:|---:|\n";
    for (const auto& [n, rate] : copy_) {
      const auto triad = triad_.find(n);
      os << "| " << static_cast<long long>(n) << " | " << gigabytes(rate) << " | "
         << (triad == triad_.end() ? "" : gigabytes(triad->second)) << " |\n";
    }
    os << '\n';
  }

  void projections(std::ostream& os) const {
    os << "## Projection\n\n"
          "GB/s counts the minimal traffic: flat (3 x gradient + 2k x basis bytes) per element; "
          "matrix-side 3mn gradient + 2mk basis elements; model: the sum over its tensors. "
          "*of copy*: that rate over the copy rate at the gradient's size, in this run. "
          "*vs fastest peer*: the fastest peer's time over ogpsa's (above 1: ogpsa is faster).\n\n"
       << "| case | ogpsa ms | ogpsa GB/s | of copy |";
    for (const auto& peer : peers_) os << ' ' << peer << " ms |";
    os << " vs fastest peer |\n|---|---:|---:|---:|";
    for (std::size_t i = 0; i < peers_.size(); ++i) os << "---:|";
    os << "---:|\n";
    for (const projection_case& c : cases_)
      for (const auto& [implementation, r] : c.by_implementation)
        if (!is_peer(implementation)) row(os, c, implementation, r);
    os << '\n';
  }

  void targets(std::ostream& os) const {
    os << "## Targets\n\n| target | measured | met |\n|---|---:|:---:|\n";
    for (int k : {1, 2, 8}) {
      const std::string name = "flat/f32/d:16777216/k:" + std::to_string(k);
      if (const auto f = copy_fraction(name))
        os << "| flat fp32, d = 16M, k = " << k << ": >= 0.90 of copy | " << fixed(*f, 2) << " | "
           << yes_no(*f >= 0.90) << " |\n";
    }
    for (const char* d : {"16777216", "1048576"}) {
      const auto f32 = time_of(std::string("flat/f32/d:") + d + "/k:8", "ogpsa");
      const auto bf16 = time_of(std::string("flat/bf16/d:") + d + "/k:8", "ogpsa");
      if (f32 && bf16)
        os << "| bf16 basis, k = 8, d = " << d << ": >= 1.5x the fp32 basis | " << fixed(*f32 / *bf16, 2)
           << "x | " << yes_no(*f32 / *bf16 >= 1.5) << " |\n";
    }
    std::optional<std::pair<double, std::string>> slowest;
    for (const projection_case& c : cases_)
      if (const auto s = speedup(c); s && (!slowest || *s < slowest->first)) slowest = {{*s, c.name}};
    if (slowest)
      os << "| every projection case: >= 1.0x the fastest peer | lowest " << fixed(slowest->first, 2) << "x ("
         << slowest->second << ") | " << yes_no(slowest->first >= 1.0) << " |\n";
    for (const projection_case& c : cases_) {
      const auto model = time_of(c.name, "ogpsa"), one = time_of(c.name, "ogpsa_one_block");
      if (c.name.rfind("model/", 0) == 0 && model && one)
        os << "| whole model (" << c.name << "): within 1.15x of one block of its size | "
           << fixed(*model / *one, 3) << "x | " << yes_no(*model / *one <= 1.15) << " |\n";
    }
    os << '\n';
  }

  /// Every estimator's time, accuracy and memory per case, and the estimator targets.
  void estimators(std::ostream& os) const {
    if (estimators_.empty()) return;
    os << "## Subspace estimators\n\n*max sine*: the largest principal-angle sine to the fp64 reference "
          "subspace; *peak MiB*: the resident memory the estimate added.\n\n"
       << "| case | estimator | ms | max sine | peak MiB |\n|---|---|---:|---:|---:|\n";
    for (const auto& [name, by_implementation] : estimators_)
      for (const auto& [implementation, r] : by_implementation)
        os << "| " << name << " | " << implementation << " | " << milliseconds(r.seconds) << " | "
           << scientific(counter(r, "max_sine")) << " | " << fixed(counter(r, "peak_MiB"), 1) << " |\n";
    os << '\n';
    estimator_targets(os);
  }

  void other_benchmarks(std::ostream& os) const {
    if (others_.empty()) return;
    os << "## Other benchmarks\n\n| benchmark | ms | GB/s |\n|---|---:|---:|\n";
    for (const auto& [name, r] : others_)
      os << "| " << name << " | " << milliseconds(r.seconds) << " | "
         << (r.bytes_per_second > 0 ? gigabytes(r.bytes_per_second) : "") << " |\n";
    os << '\n';
  }

 private:
  projection_case& find_or_add(const std::string& name) {
    for (projection_case& c : cases_)
      if (c.name == name) return c;
    cases_.push_back({name, {}});
    return cases_.back();
  }

  static double counter(const summary_reporter::result& r, const std::string& name) {
    const auto it = r.counters.find(name);
    return it == r.counters.end() ? std::nan("") : it->second;
  }

  const summary_reporter::result* estimator(const std::string& case_name, const std::string& implementation) const {
    const auto c = estimators_.find(case_name);
    if (c == estimators_.end()) return nullptr;
    const auto it = c->second.find(implementation);
    return it == c->second.end() ? nullptr : &it->second;
  }

  /// "<a> is at least <factor>x faster than <b> at max sine <= <bound>", when both ran.
  void speed_target(std::ostream& os, const std::string& case_name, const std::string& a, const std::string& b,
                    double factor, double bound) const {
    const auto *ra = estimator(case_name, a), *rb = estimator(case_name, b);
    if (!ra || !rb) return;
    const double ratio = rb->seconds / ra->seconds, sine = counter(*ra, "max_sine");
    os << "| " << case_name << ": " << a << " >= " << fixed(factor, 0) << "x faster than " << b
       << " at max sine <= " << scientific(bound) << " | " << fixed(ratio, 1) << "x, sine " << scientific(sine)
       << " | " << yes_no(ratio >= factor && sine <= bound) << " |\n";
  }

  void estimator_targets(std::ostream& os) const {
    const std::string tall = "tall_skinny/d:4194304", side = "matrix_side/m:2048/n:5632";
    os << "| estimator target | measured | met |\n|---|---:|:---:|\n";
    speed_target(os, tall, "exact_svd", "eigen_bdcsvd", 5, 1e-4);
    speed_target(os, side, "randomized_svd", "eigen_bdcsvd", 10, 1e-2);
    speed_target(os, side, "randomized_svd", "torch_svd", 1, 1e-2);
    if (const auto* exact = estimator(tall, "exact_svd")) {
      const auto c = estimators_.find(tall);
      for (const auto& [name, incremental] : c->second)  // the default and every other setting
        if (name.rfind("frequent_directions", 0) == 0) memory_target(os, tall, name, incremental, *exact);
    }
    os << '\n';
  }

  static void memory_target(std::ostream& os, const std::string& case_name, const std::string& name,
                            const summary_reporter::result& incremental, const summary_reporter::result& exact) {
    const double slower = incremental.seconds / exact.seconds, sine = counter(incremental, "max_sine");
    const double memory = counter(incremental, "peak_MiB") / counter(exact, "peak_MiB");
    os << "| " << case_name << ": " << name << " within 2x of exact_svd's time, <= 1/4 of its memory, max sine "
       << "<= 1e-2 | " << fixed(slower, 2) << "x time, " << fixed(memory, 3) << "x memory, sine "
       << scientific(sine) << " | " << yes_no(slower <= 2 && memory <= 0.25 && sine <= 1e-2) << " |\n";
  }

  std::optional<double> time_of(const std::string& case_name, const std::string& implementation) const {
    for (const projection_case& c : cases_)
      if (c.name == case_name)
        if (const auto it = c.by_implementation.find(implementation); it != c.by_implementation.end())
          return it->second.seconds;
    return std::nullopt;
  }

  std::optional<double> copy_fraction(const std::string& case_name, const std::string& implementation = "ogpsa") const {
    for (const projection_case& c : cases_)
      if (c.name == case_name)
        if (const auto it = c.by_implementation.find(implementation); it != c.by_implementation.end())
          if (const auto copy = copy_.find(it->second.gradient_elements); copy != copy_.end())
            return it->second.bytes_per_second / copy->second;
    return std::nullopt;
  }

  /// The fastest peer's time over ogpsa's, for a case that has both.
  static std::optional<double> speedup(const projection_case& c) {
    const auto ours = c.by_implementation.find("ogpsa");
    std::optional<double> fastest;
    for (const auto& [implementation, r] : c.by_implementation)
      if (is_peer(implementation) && (!fastest || r.seconds < *fastest)) fastest = r.seconds;
    if (ours == c.by_implementation.end() || !fastest) return std::nullopt;
    return *fastest / ours->second.seconds;
  }

  void row(std::ostream& os, const projection_case& c, const std::string& implementation,
           const summary_reporter::result& r) const {
    os << "| " << c.name << (implementation == "ogpsa" ? "" : " (" + implementation + ")") << " | "
       << milliseconds(r.seconds) << " | " << gigabytes(r.bytes_per_second) << " | ";
    if (const auto f = copy_fraction(c.name, implementation)) os << fixed(*f, 2);
    os << " |";
    for (const auto& peer : peers_) {
      const auto it = c.by_implementation.find(peer);
      os << ' ' << (it == c.by_implementation.end() ? "" : milliseconds(it->second.seconds)) << " |";
    }
    const auto s = implementation == "ogpsa" ? speedup(c) : std::nullopt;
    os << ' ' << (s ? fixed(*s, 2) + "x" : "") << " |\n";
  }

  std::map<double, double> copy_, triad_;  // gradient elements -> bytes per second
  std::vector<projection_case> cases_;
  std::vector<std::string> peers_;
  std::vector<std::pair<std::string, summary_reporter::result>> others_;
  /// case (e.g. "tall_skinny/d:4194304") -> estimator -> result
  std::map<std::string, std::map<std::string, summary_reporter::result>> estimators_;
};

std::string describe(const benchmark::CPUInfo& cpu) {
  std::ostringstream os;
  os << cpu.num_cpus << " CPUs at " << fixed(cpu.cycles_per_second / 1e6, 0) << " MHz";
  for (const auto& cache : cpu.caches)
    os << ", L" << cache.level << ' ' << cache.type << ' ' << cache.size / 1024 << " KiB";
  if (!cpu.load_avg.empty()) {
    os << "; load average at start";
    for (double l : cpu.load_avg) os << ' ' << fixed(l, 2);
  }
#if defined(_OPENMP)
  os << "; " << omp_get_max_threads() << " OpenMP threads";
#endif
  return os.str();
}

}  // namespace

bool summary_reporter::ReportContext(const Context& context) {
  machine_ = describe(context.cpu_info);
  return JSONReporter::ReportContext(context);
}

void summary_reporter::ReportRuns(const std::vector<Run>& runs) {
  for (const Run& run : runs) {
    const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
    const bool single = run.run_type == Run::RT_Iteration && run.repetitions <= 1;
    if (run.error_occurred || !(median || single)) continue;
    repetitions_ = std::max<std::int64_t>(repetitions_, run.repetitions);
    std::string name = run.run_name.str();
    if (const auto at = name.rfind("/real_time"); at != std::string::npos) name.erase(at);
    result r;
    r.seconds = run.GetAdjustedRealTime() / benchmark::GetTimeUnitMultiplier(run.time_unit);
    if (const auto it = run.counters.find("bytes_per_second"); it != run.counters.end()) r.bytes_per_second = it->second;
    if (const auto it = run.counters.find("gradient_elements"); it != run.counters.end()) r.gradient_elements = it->second;
    for (const auto& [counter, value] : run.counters) r.counters[counter] = value;
    if (!results_.count(name)) order_.push_back(name);
    results_[name] = r;
  }
  JSONReporter::ReportRuns(runs);
}

void summary_reporter::Finalize() {
  JSONReporter::Finalize();
  std::ofstream os(path_);
  const std::time_t now = std::time(nullptr);
  os << "# ogpsa benchmark summary\n\n" << machine_ << ". "
     << (repetitions_ > 1 ? "Medians of " + std::to_string(repetitions_) + " repetitions" : "Single runs")
     << ", " << std::put_time(std::gmtime(&now), "%Y-%m-%d %H:%M UTC") << ".\n\n";
  const writer w(order_, results_);
  w.targets(os);
  w.roofline(os);
  w.projections(os);
  w.estimators(os);
  w.other_benchmarks(os);
  if (!os) std::fprintf(stderr, "could not write the summary to %s\n", path_.c_str());
}

}  // namespace ogpsa::bench
