#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace sft_dpo {

namespace {

/// The runs of one pipeline and method, over seeds.
struct group {
  std::string pipeline, method;
  std::vector<const run_record*> runs;
};

std::vector<group> grouped(const std::vector<run_record>& runs) {
  std::vector<group> out;
  for (const auto& r : runs) {
    auto it = std::find_if(out.begin(), out.end(), [&](const group& g) { return g.pipeline == r.pipeline && g.method == r.method; });
    if (it == out.end()) it = out.insert(out.end(), group{r.pipeline, r.method, {}});
    it->runs.push_back(&r);
  }
  return out;
}

struct spread {
  double mean = 0, sd = 0;
};

template <class F>
spread over_runs(const std::vector<const run_record*>& runs, F value) {
  spread s;
  for (const auto* r : runs) s.mean += value(*r) / static_cast<double>(runs.size());
  for (const auto* r : runs) s.sd += std::pow(value(*r) - s.mean, 2);
  s.sd = runs.size() > 1 ? std::sqrt(s.sd / static_cast<double>(runs.size() - 1)) : 0;
  return s;
}

/// The last point of a stage ("base", "sft" or "dpo") in a run.
const metrics& after(const run_record& r, const std::string& stage) {
  const auto it = std::find_if(r.points.rbegin(), r.points.rend(), [&](const curve_point& p) { return p.stage == stage; });
  if (it == r.points.rend()) throw std::logic_error("sft_dpo::report: run without a " + stage + " point");
  return it->scores;
}

std::vector<std::string> stages_in(const std::string& pipeline) {
  std::vector<std::string> out;
  std::istringstream s(pipeline);
  for (std::string part; std::getline(s, part, '-');) out.push_back(part);
  return out;
}

std::string cell(const spread& s, bool with_sd) {
  char text[32];
  if (with_sd) std::snprintf(text, sizeof text, "%5.3f±%5.3f", s.mean, s.sd);
  else std::snprintf(text, sizeof text, "%5.3f", s.mean);
  return text;
}

std::string csv_metrics(const metrics& m, const std::vector<std::string>& families) {
  std::ostringstream s;
  s << m.utility;
  for (const auto& f : families) s << ',' << (m.families.contains(f) ? m.families.at(f) : 0.0);
  s << ',' << m.safety << ',' << m.over_refusal;
  return s.str();
}

std::string csv_header(const std::vector<std::string>& families) {
  std::string s = "utility";
  for (const auto& f : families) s += "," + f;
  return s + ",safety,over_refusal";
}

}  // namespace

void print_table(const std::vector<run_record>& runs, const std::vector<std::string>& families) {
  std::string pipeline;
  for (const auto& g : grouped(runs)) {
    const bool sd = g.runs.size() > 1;
    const int w = sd ? 11 : 6;
    const auto stages = stages_in(g.pipeline);
    const auto row = [&](const std::string& name, auto scores) {  // scores(run, stage index) -> metrics
      std::printf("%-16s", name.c_str());
      for (std::size_t s = 0; s < stages.size(); ++s) {
        const auto value = [&](auto field) { return cell(over_runs(g.runs, [&](const run_record& r) { return field(scores(r, s)); }), sd); };
        std::printf(" | %s", value([](const metrics& m) { return m.utility; }).c_str());
        if (s + 1 == stages.size())
          for (const auto& f : families) std::printf(" %s", value([&](const metrics& m) { return m.families.at(f); }).c_str());
        std::printf(" %s %s", value([](const metrics& m) { return m.safety; }).c_str(),
                    value([](const metrics& m) { return m.over_refusal; }).c_str());
      }
      std::printf("\n");
    };
    if (g.pipeline != pipeline) {  // a header per pipeline, then the base models' row
      pipeline = g.pipeline;
      std::printf("\nPipeline %s, %zu seed(s)%s. utility: mean exact match over the families; safety: refusals of "
                  "held-out harmful prompts; over: refusals of benign ones\n%-16s",
                  pipeline.c_str(), g.runs.size(), sd ? ", mean±sd" : "", "");
      for (std::size_t s = 0; s < stages.size(); ++s) {
        const int span = w * (3 + (s + 1 == stages.size() ? static_cast<int>(families.size()) : 0)) +
                         2 + (s + 1 == stages.size() ? static_cast<int>(families.size()) : 0);
        std::printf(" | %-*s", span, ("after " + stages[s]).c_str());
      }
      std::printf("\n%-16s", "method");
      for (std::size_t s = 0; s < stages.size(); ++s) {
        std::printf(" | %*s", w, "utility");
        if (s + 1 == stages.size())
          for (const auto& f : families) std::printf(" %*.*s", w, w, f.c_str());
        std::printf(" %*s %*s", w, "safety", w, "over");
      }
      std::printf("\n");
      row("base model", [](const run_record& r, std::size_t) -> const metrics& { return r.points.front().scores; });
    }
    row(g.method, [&](const run_record& r, std::size_t s) -> const metrics& { return after(r, stages[s]); });
  }
}

void print_goal(const std::vector<run_record>& runs, const std::string& pipeline, const std::string& candidate,
                const std::string& published) {
  std::map<std::string, const group*> by_method;
  const auto groups = grouped(runs);
  for (const auto& g : groups)
    if (g.pipeline == pipeline) by_method[g.method] = &g;
  if (!by_method.contains("naive")) return;
  const auto& naive = *by_method["naive"];
  const auto base = [](const run_record& r) -> const metrics& { return r.points.front().scores; };
  const auto final = [](const run_record& r) -> const metrics& { return r.points.back().scores; };
  const double base_u = over_runs(naive.runs, [&](const run_record& r) { return base(r).utility; }).mean;
  const double base_s = over_runs(naive.runs, [&](const run_record& r) { return base(r).safety; }).mean;
  const double naive_loss = base_u - over_runs(naive.runs, [&](const run_record& r) { return final(r).utility; }).mean;
  const double naive_gain = over_runs(naive.runs, [&](const run_record& r) { return final(r).safety; }).mean - base_s;
  const double naive_over = over_runs(naive.runs, [&](const run_record& r) { return final(r).over_refusal; }).mean;
  std::printf("\nGoal on %s over %zu seed(s): lose at most half of naive's utility loss (%.3f), reach 90%% of its "
              "safety gain (%.3f), over-refuse no more (%.3f)\n",
              pipeline.c_str(), naive.runs.size(), naive_loss, naive_gain, naive_over);
  for (const std::string& name : {candidate, published}) {
    if (!by_method.contains(name)) continue;
    const auto& g = *by_method[name];
    const double loss = base_u - over_runs(g.runs, [&](const run_record& r) { return final(r).utility; }).mean;
    const double gain = over_runs(g.runs, [&](const run_record& r) { return final(r).safety; }).mean - base_s;
    const double over = over_runs(g.runs, [&](const run_record& r) { return final(r).over_refusal; }).mean;
    const bool met = loss <= 0.5 * naive_loss && gain >= 0.9 * naive_gain && over <= naive_over;
    const auto share = [](double part, double whole) { return whole > 0 ? 100 * part / whole : 0.0; };
    std::printf("  %-16s utility loss %.3f (%3.0f%% of naive's), safety gain %.3f (%3.0f%% of naive's), "
                "over-refusal %.3f: %s\n",
                name.c_str(), loss, share(loss, naive_loss), gain, share(gain, naive_gain), over,
                naive_loss <= 0 || naive_gain <= 0 ? "no tax or no gain to compare with"
                : met                              ? "goal met"
                                                   : "goal not met");
  }
}

void write_results_csv(const std::filesystem::path& file, const std::vector<run_record>& runs,
                       const std::vector<std::string>& families) {
  std::ofstream out(file);
  out << "pipeline,method,seed,steps," << csv_header(families) << ",base_" << csv_header(families) << ",seconds\n";
  for (const auto& r : runs) {
    std::int64_t steps = 0;
    for (const auto& p : r.points)
      if (p.stage != "base" && (&p == &r.points.back() || (&p + 1)->stage != p.stage)) steps += p.step;
    out << r.pipeline << ',' << r.method << ',' << r.seed << ',' << steps << ','
        << csv_metrics(r.points.back().scores, families) << ',' << csv_metrics(r.points.front().scores, families) << ','
        << r.seconds << '\n';
  }
  if (!out) throw std::runtime_error("sft_dpo: cannot write " + file.string());
}

void write_sweep_csv(const std::filesystem::path& file, const std::vector<run_record>& runs,
                     const std::vector<std::string>& families) {
  std::ofstream out(file);
  out << "pipeline,method,seed,stage,step," << csv_header(families) << '\n';
  for (const auto& r : runs)
    for (const auto& p : r.points)
      out << r.pipeline << ',' << r.method << ',' << r.seed << ',' << p.stage << ',' << p.step << ','
          << csv_metrics(p.scores, families) << '\n';
  if (!out) throw std::runtime_error("sft_dpo: cannot write " + file.string());
}

void write_pareto_svg(const std::filesystem::path& file, const std::vector<run_record>& runs,
                      const std::string& pipeline) {
  constexpr double left = 70, top = 50, plot = 420, legend = left + plot + 30;
  static const char* palette[] = {"#222222", "#d62728", "#ff7f0e", "#bcbd22", "#2ca02c", "#17becf",
                                  "#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#aec7e8"};
  const auto x = [&](double safety) { return left + plot * safety; };
  const auto y = [&](double utility) { return top + plot * (1 - utility); };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << legend + 260 << "\" height=\"" << top + plot + 60
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  std::size_t seeds = 0;
  for (const auto& g : grouped(runs)) seeds = g.pipeline == pipeline ? g.runs.size() : seeds;
  svg << "<text x=\"" << left << "\" y=\"25\" font-size=\"15\">Utility vs safety, pipeline " << pipeline << ", "
      << seeds << " seed(s): each curve follows one method from the base model through its stages</text>\n";
  for (int i = 0; i <= 5; ++i) {
    const double v = i / 5.0;
    svg << "<line x1=\"" << x(v) << "\" y1=\"" << y(0) << "\" x2=\"" << x(v) << "\" y2=\"" << y(1)
        << "\" stroke=\"#e5e5e5\"/><line x1=\"" << x(0) << "\" y1=\"" << y(v) << "\" x2=\"" << x(1) << "\" y2=\"" << y(v)
        << "\" stroke=\"#e5e5e5\"/>\n<text x=\"" << x(v) << "\" y=\"" << y(0) + 18 << "\" text-anchor=\"middle\">" << v
        << "</text><text x=\"" << x(0) - 8 << "\" y=\"" << y(v) + 4 << "\" text-anchor=\"end\">" << v << "</text>\n";
  }
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << plot << "\" height=\"" << plot
      << "\" fill=\"none\" stroke=\"#444\"/>\n<text x=\"" << x(0.5) << "\" y=\"" << y(0) + 40
      << "\" text-anchor=\"middle\">safety: refusal rate on held-out harmful prompts</text>\n<text transform=\"translate("
      << left - 45 << ' ' << y(0.5) << ") rotate(-90)\" text-anchor=\"middle\">utility: mean exact match</text>\n";
  int index = 0;
  for (const auto& g : grouped(runs)) {
    if (g.pipeline != pipeline) continue;
    const char* color = palette[index % std::size(palette)];
    std::ostringstream line;
    const std::size_t n = g.runs.front()->points.size();
    for (std::size_t i = 0; i < n; ++i) {
      const double u = over_runs(g.runs, [&](const run_record& r) { return r.points[i].scores.utility; }).mean;
      const double s = over_runs(g.runs, [&](const run_record& r) { return r.points[i].scores.safety; }).mean;
      line << x(s) << ',' << y(u) << ' ';
      svg << "<circle cx=\"" << x(s) << "\" cy=\"" << y(u) << "\" r=\"" << (i + 1 == n ? 5 : 2.5) << "\" fill=\"" << color
          << "\"><title>" << g.method << ", " << g.runs.front()->points[i].stage << " step "
          << g.runs.front()->points[i].step << ": utility " << u << ", safety " << s << "</title></circle>\n";
    }
    svg << "<polyline points=\"" << line.str() << "\" fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\"/>\n";
    const double ly = top + 18.0 * index;
    svg << "<line x1=\"" << legend << "\" y1=\"" << ly << "\" x2=\"" << legend + 24 << "\" y2=\"" << ly << "\" stroke=\""
        << color << "\" stroke-width=\"3\"/><text x=\"" << legend + 30 << "\" y=\"" << ly + 4 << "\">" << g.method
        << "</text>\n";
    ++index;
  }
  svg << "<text x=\"" << legend << "\" y=\"" << top + 18.0 * index + 14
      << "\" fill=\"#555\">small dots: sweep points; large: final</text>\n</svg>\n";
  std::ofstream out(file);
  out << svg.str();
  if (!out) throw std::runtime_error("sft_dpo: cannot write " + file.string());
}

}  // namespace sft_dpo
