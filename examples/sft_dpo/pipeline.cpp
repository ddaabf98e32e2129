#include "pipeline.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace sft_dpo {

std::vector<stage_kind> stages_of(const std::string& pipeline) {
  if (pipeline == "sft") return {stage_kind::sft};
  if (pipeline == "dpo") return {stage_kind::dpo};
  if (pipeline == "sft-dpo") return {stage_kind::sft, stage_kind::dpo};
  throw std::invalid_argument("sft_dpo: unknown pipeline '" + pipeline + "' (expected sft, dpo or sft-dpo)");
}

namespace {

using json = nlohmann::json;

/// FNV-1a: a stable hash, so checkpoint names mean the same on every machine.
std::string digest(const std::string& text) {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : text) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

void describe(std::ostream& s, const std::vector<sft_record>& records) {
  for (const auto& r : records) s << r.instruction << '\x1f' << r.input << '\x1f' << r.output << '\x1f' << r.category << '\x1e';
}

void describe(std::ostream& s, const std::vector<dpo_record>& records) {
  for (const auto& r : records) s << r.prompt << '\x1f' << r.chosen << '\x1f' << r.rejected << '\x1f' << r.category << '\x1e';
}

void describe(std::ostream& s, const stage_settings& st) {
  s << st.steps << ',' << st.batch << ',' << st.learning_rate << ';';
}

void describe(std::ostream& s, const method& m) {
  const auto& p = m.projection;
  s << m.name << ',' << static_cast<int>(m.kind) << ',' << static_cast<int>(p.source) << ',' << p.matrix_side << ','
    << p.rank.value_or(-1) << ',' << p.energy << ',' << p.update_space << ',' << p.refresh_sft << ',' << p.refresh_dpo << ';';
}

json to_json(const metrics& m) {
  return {{"utility", m.utility}, {"safety", m.safety}, {"over_refusal", m.over_refusal}, {"families", m.families}};
}

metrics metrics_from(const json& j) {
  return {j.at("families").get<std::map<std::string, double>>(), j.at("utility").get<double>(),
          j.at("safety").get<double>(), j.at("over_refusal").get<double>()};
}

void save_checkpoint(const std::filesystem::path& stem, const stage_result& r) {
  std::vector<torch::Tensor> tensors;
  for (const auto& w : r.snapshots) tensors.insert(tensors.end(), w.begin(), w.end());
  torch::save(tensors, stem.string() + ".pt");
  json j{{"snapshots", r.snapshots.size()},
         {"seconds", r.timing.seconds},
         {"refresh_seconds", r.timing.refresh_seconds},
         {"refreshes", r.timing.refreshes},
         {"points", json::array()}};
  for (const auto& p : r.points) j["points"].push_back({{"step", p.step}, {"scores", to_json(p.scores)}});
  // The description is written last, under a temporary name: it marks the checkpoint complete.
  const auto temporary = stem.string() + ".json.partial";
  std::ofstream(temporary) << j.dump(1) << '\n';
  std::filesystem::rename(temporary, stem.string() + ".json");
}

std::optional<stage_result> load_checkpoint(const std::filesystem::path& stem) {
  std::ifstream in(stem.string() + ".json");
  if (!in) return std::nullopt;
  const json j = json::parse(in);
  std::vector<torch::Tensor> tensors;
  torch::load(tensors, stem.string() + ".pt");
  stage_result r;
  const auto count = j.at("snapshots").get<std::size_t>();
  if (count == 0 || tensors.size() % count != 0)
    throw std::runtime_error("sft_dpo: checkpoint " + stem.string() + " is inconsistent; delete it");
  const std::size_t per = tensors.size() / count;
  for (std::size_t i = 0; i < count; ++i)
    r.snapshots.emplace_back(tensors.begin() + static_cast<std::ptrdiff_t>(i * per),
                             tensors.begin() + static_cast<std::ptrdiff_t>((i + 1) * per));
  for (const auto& p : j.at("points")) r.points.push_back({p.at("step").get<std::int64_t>(), metrics_from(p.at("scores"))});
  r.timing = {j.at("seconds").get<double>(), j.at("refresh_seconds").get<double>(), j.at("refreshes").get<std::int64_t>()};
  return r;
}

std::string chain_name(const std::vector<stage_kind>& chain) {
  std::string s;
  for (auto k : chain) {
    if (!s.empty()) s += '-';
    s += name_of(k);
  }
  return s;
}

}  // namespace

runner::runner(const options& o, const dataset& data)
    : options_(o), data_(data), checkpoints_(o.out / "checkpoints") {
  std::filesystem::create_directories(checkpoints_);
}

const stage_result& runner::base(int seed) { return base_entry(seed).result; }

const stage_result& runner::stage(const method& m, const std::vector<stage_kind>& chain, int seed) {
  return stage_entry(m, chain, seed).result;
}

const runner::entry& runner::cached(const std::string& key, const std::string& label,
                                    const std::function<stage_result()>& make) {
  if (const auto it = entries_.find(key); it != entries_.end()) return it->second;
  const auto stem = checkpoints_ / key;
  std::optional<stage_result> r = options_.fresh ? std::nullopt : load_checkpoint(stem);
  if (r) {
    std::printf("  %-34s loaded from %s.json\n", label.c_str(), stem.string().c_str());
  } else {
    r = make();
    save_checkpoint(stem, *r);
    ++trained_;
  }
  return entries_.emplace(key, entry{key, std::move(*r)}).first->second;
}

const runner::entry& runner::base_entry(int seed) {
  std::ostringstream d;
  const auto& c = options_.model;
  d << c.context << ',' << c.width << ',' << c.layers << ',' << c.heads << ',' << c.mlp << ';';
  describe(d, options_.base);
  describe(d, data_.base);
  describe(d, data_.evaluation);
  const std::string key = "base-s" + std::to_string(seed) + "-" + digest(d.str());
  const std::string label = "seed " + std::to_string(seed) + " base";
  return cached(key, label, [&] {
    return train_stage(stage_kind::base, method{}, {}, data_, options_, seed, label);
  });
}

const runner::entry& runner::stage_entry(const method& m, const std::vector<stage_kind>& chain, int seed) {
  const std::vector<stage_kind> parent_chain(chain.begin(), chain.end() - 1);
  const std::string label = "seed " + std::to_string(seed) + " " + m.name + " " + chain_name(chain);
  if (m.kind == method_kind::merge) {  // no training: naive tuning's weights, merged with the base's
    const method naive = all_methods(options_).front();
    const entry& tuned = stage_entry(naive, chain, seed);
    const entry& base = base_entry(seed);
    std::ostringstream d;
    d << tuned.key << ',' << options_.merge_alpha;
    return cached(m.name + "-" + chain_name(chain) + "-s" + std::to_string(seed) + "-" + digest(d.str()), label,
                  [&] { return merged(tuned.result, base.result.output()); });
  }
  const entry& parent = parent_chain.empty() ? base_entry(seed) : stage_entry(m, parent_chain, seed);
  const stage_kind kind = chain.back();
  std::ostringstream d;
  d << parent.key << ';';
  describe(d, m);
  describe(d, kind == stage_kind::sft ? options_.sft : options_.dpo);
  describe(d, data_.sft);
  describe(d, data_.dpo);
  describe(d, data_.reference);
  describe(d, data_.evaluation);
  const auto& o = options_;
  d << o.beta << ',' << o.chosen_nll << ',' << o.clip << ',' << o.sweep_points << ',' << o.reference_batches << ','
    << o.replay_fraction << ',' << o.lora_rank << ',' << o.lora_alpha << ',' << o.lora_lr_scale;
  const std::string key = m.name + "-" + chain_name(chain) + "-s" + std::to_string(seed) + "-" + digest(d.str());
  return cached(key, label, [&] {
    return train_stage(kind, m, parent.result.output(), data_, options_, seed, label);
  });
}

stage_result runner::merged(const stage_result& tuned, const weights& base) const {
  stage_result out;
  const double a = options_.merge_alpha;
  for (std::size_t i = 0; i < tuned.snapshots.size(); ++i) {
    weights w;
    for (std::size_t t = 0; t < base.size(); ++t) w.push_back(base[t] + a * (tuned.snapshots[i][t] - base[t]));
    auto model = make_model(options_.model, w, 0);
    out.points.push_back({tuned.points[i].step, evaluate(model, data_.evaluation)});
    out.snapshots.push_back(std::move(w));
  }
  return out;
}

}  // namespace sft_dpo
