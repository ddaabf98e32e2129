#include "training.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <numbers>
#include <random>

#include <ogpsa/ogpsa.hpp>
#include <ogpsa/torch.hpp>

#include "losses.hpp"

namespace sft_dpo {

const char* name_of(stage_kind k) {
  switch (k) {
    case stage_kind::base: return "base";
    case stage_kind::sft: return "sft";
    case stage_kind::dpo: return "dpo";
  }
  return "?";
}

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

/// Indices in a fresh random order every epoch; the order depends only on the seed.
class sampler {
 public:
  sampler(std::size_t n, std::uint64_t seed) : order_(n), rng_(seed) {
    for (std::size_t i = 0; i < n; ++i) order_[i] = i;
    shuffle();
  }
  std::vector<std::size_t> next(std::int64_t count) {
    std::vector<std::size_t> out;
    for (std::int64_t i = 0; i < count; ++i) {
      if (at_ == order_.size()) shuffle();
      out.push_back(order_[at_++]);
    }
    return out;
  }

 private:
  void shuffle() {
    for (std::size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[rng_() % i]);
    at_ = 0;
  }
  std::vector<std::size_t> order_;
  std::size_t at_ = 0;
  std::mt19937_64 rng_;
};

std::uint64_t seed_of(int seed, const std::string& label) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : label + "#" + std::to_string(seed)) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}

/// Step counts and an estimate of the time left, on one line that a terminal rewrites in place.
class progress {
 public:
  progress(std::string label, std::int64_t total)
      : label_(std::move(label)), total_(total), start_(clock_type::now()), terminal_(isatty(fileno(stdout))) {}

  void update(std::int64_t step, double loss) {
    const double elapsed = seconds_since(start_);
    const bool due = terminal_ ? elapsed - shown_ > 0.5 : step * 10 / total_ != (step - 1) * 10 / total_;
    if (!due && step != total_) return;
    shown_ = elapsed;
    const double left = elapsed / static_cast<double>(step) * static_cast<double>(total_ - step);
    std::printf("%s  %-34s step %5lld/%lld  loss %7.4f  %5.0f s, ETA %4.0f s%s", terminal_ ? "\r" : "",
                label_.c_str(), static_cast<long long>(step), static_cast<long long>(total_), loss, elapsed,
                left, terminal_ ? "" : "\n");
    std::fflush(stdout);
  }
  void finish() {
    if (terminal_) std::printf("\n");
  }

 private:
  std::string label_;
  std::int64_t total_;
  clock_type::time_point start_;
  bool terminal_;
  double shown_ = -1;
};

template <class T>
std::vector<T> pick(const std::vector<T>& from, const std::vector<std::size_t>& indices) {
  std::vector<T> out;
  for (std::size_t i : indices) out.push_back(from[i]);
  return out;
}

std::vector<exchange> exchanges(const std::vector<sft_record>& records) {
  std::vector<exchange> out;
  for (const auto& r : records) out.push_back(as_exchange(r));
  return out;
}

std::vector<batch> split_into_batches(const std::vector<exchange>& items, std::int64_t count, std::int64_t context) {
  std::vector<batch> out;
  const auto n = static_cast<std::int64_t>(items.size());
  count = std::clamp<std::int64_t>(count, 1, n);
  for (std::int64_t b = 0; b < count; ++b)
    out.push_back(make_batch({items.begin() + b * n / count, items.begin() + (b + 1) * n / count}, context));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Objectives: each call draws the next batch and returns its loss.

using objective = std::function<torch::Tensor()>;

objective language_modelling(language_model& model, std::vector<exchange> items, std::int64_t batch_size,
                             std::uint64_t seed) {
  auto order = std::make_shared<sampler>(items.size(), seed);
  return [model, items = std::move(items), batch_size, order]() mutable {
    const batch b = make_batch(pick(items, order->next(batch_size)), model->config.context);
    return answer_loss(model->forward(b.tokens), b);
  };
}

/// Safety SFT; replay mixes `fraction * batch` general examples into every batch.
objective safety_sft(language_model& model, const dataset& data, const options& o, bool replay, std::uint64_t seed) {
  auto order = std::make_shared<sampler>(data.sft.size(), seed);
  auto general = std::make_shared<sampler>(data.reference.size(), seed + 1);
  const auto extra = replay ? static_cast<std::int64_t>(std::lround(o.replay_fraction * static_cast<double>(o.sft.batch))) : 0;
  return [model, &data, &o, order, general, extra]() mutable {
    auto items = exchanges(pick(data.sft, order->next(o.sft.batch)));
    for (const auto& r : pick(data.reference, general->next(extra))) items.push_back(as_exchange(r));
    const batch b = make_batch(items, model->config.context);
    return answer_loss(model->forward(b.tokens), b);
  };
}

/// The frozen reference model's log-likelihoods of every pair's chosen and rejected answer.
std::pair<torch::Tensor, torch::Tensor> reference_likelihoods(language_model& model, const std::vector<dpo_record>& pairs) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> chosen, rejected;
  for (std::size_t i = 0; i < pairs.size(); i += 128) {
    const std::vector<dpo_record> chunk(pairs.begin() + static_cast<std::ptrdiff_t>(i),
                                        pairs.begin() + static_cast<std::ptrdiff_t>(std::min(pairs.size(), i + 128)));
    const batch b = make_pair_batch(chunk, model->config.context);
    const auto ll = answer_log_likelihood(model->forward(b.tokens), b);
    const auto n = static_cast<std::int64_t>(chunk.size());
    chosen.push_back(ll.slice(0, 0, n));
    rejected.push_back(ll.slice(0, n, 2 * n));
  }
  return {torch::cat(chosen), torch::cat(rejected)};
}

/// DPO with a frozen reference (the stage's input model) plus `chosen_nll` times the mean per-token
/// negative log-likelihood of the chosen answers. Without that term DPO can lower the likelihood of
/// both answers ("likelihood displacement") and with it the refusals it should teach (Pang et al.,
/// arXiv 2404.19733; Razin et al., arXiv 2410.08847). Replay adds the general data's loss.
objective preference(language_model& model, const dataset& data, const options& o, bool replay, std::uint64_t seed) {
  auto [ref_chosen, ref_rejected] = reference_likelihoods(model, data.dpo);
  auto order = std::make_shared<sampler>(data.dpo.size(), seed);
  auto general = std::make_shared<sampler>(data.reference.size(), seed + 1);
  const auto extra = replay ? static_cast<std::int64_t>(std::lround(o.replay_fraction * static_cast<double>(o.dpo.batch))) : 0;
  return [model, &data, &o, order, general, extra, ref_chosen, ref_rejected]() mutable {
    const auto picked = order->next(o.dpo.batch);
    const batch b = make_pair_batch(pick(data.dpo, picked), model->config.context);
    const auto ll = answer_log_likelihood(model->forward(b.tokens), b);
    const auto n = static_cast<std::int64_t>(picked.size());
    const auto index = torch::tensor(std::vector<std::int64_t>(picked.begin(), picked.end()));
    const auto chosen = ll.slice(0, 0, n), rejected = ll.slice(0, n, 2 * n);
    auto loss = dpo_loss(chosen, rejected, ref_chosen.index_select(0, index), ref_rejected.index_select(0, index), o.beta);
    if (o.chosen_nll > 0) loss = loss + o.chosen_nll * (-chosen / answer_lengths(b).slice(0, 0, n)).mean();
    if (extra > 0) {
      const batch g = make_batch(exchanges(pick(data.reference, general->next(extra))), model->config.context);
      loss = loss + answer_loss(model->forward(g.tokens), g);
    }
    return loss;
  };
}

// ---------------------------------------------------------------------------------------------

stage_settings settings_of(stage_kind kind, const options& o) {
  return kind == stage_kind::base ? o.base : kind == stage_kind::sft ? o.sft : o.dpo;
}

objective make_objective(stage_kind kind, const method& m, language_model& model, const dataset& data,
                         const options& o, std::uint64_t seed) {
  const bool replay = m.kind == method_kind::replay;
  switch (kind) {
    case stage_kind::base: return language_modelling(model, exchanges(data.base), o.base.batch, seed);
    case stage_kind::sft: return safety_sft(model, data, o, replay, seed);
    case stage_kind::dpo: return preference(model, data, o, replay, seed);
  }
  return {};
}

/// Base training warms up for 5% of its steps, then follows a cosine down to a tenth; safety
/// stages keep their rate constant, which makes their intermediate points a sweep over steps.
double learning_rate(stage_kind kind, const stage_settings& s, std::int64_t step) {
  if (kind != stage_kind::base) return s.learning_rate;
  const double warmup = 0.05 * static_cast<double>(s.steps), t = static_cast<double>(step);
  if (t < warmup) return s.learning_rate * (t + 1) / warmup;
  const double progress = (t - warmup) / (static_cast<double>(s.steps) - warmup);
  return s.learning_rate * (0.1 + 0.45 * (1 + std::cos(std::numbers::pi * progress)));
}

std::vector<std::int64_t> sweep_steps(stage_kind kind, std::int64_t steps, std::int64_t points) {
  if (kind == stage_kind::base) return {steps};
  std::vector<std::int64_t> out;
  for (std::int64_t i = 1; i <= points; ++i) out.push_back(std::max<std::int64_t>(1, steps * i / points));
  return out;
}

std::vector<torch::Tensor> trainable(language_model& model) {
  std::vector<torch::Tensor> out;
  for (const auto& p : model->parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Steps: plain AdamW, or AdamW wrapped by ogpsa::torch::projected_optimizer.

class stage_optimizer::impl {
 public:
  impl(language_model& model, double rate, double clip)
      : adamw(trainable(model), torch::optim::AdamWOptions(rate).weight_decay(0)), clip_(clip) {}
  virtual ~impl() = default;
  virtual void step() = 0;
  virtual std::vector<subspace> subspaces() const { return {}; }

  torch::optim::AdamW adamw;
  stage_timing timing;

 protected:
  void clip(const std::vector<torch::Tensor>& parameters) const {
    torch::nn::utils::clip_grad_norm_(parameters, clip_);
  }

 private:
  double clip_;
};

namespace {

class plain_impl final : public stage_optimizer::impl {
 public:
  using impl::impl;
  void step() override {
    clip(adamw.param_groups().front().params());
    adamw.step();
  }
};

template <class Projector>
class projected_impl final : public stage_optimizer::impl {
 public:
  using optimizer_type = ogpsa::torch::projected_optimizer<Projector>;

  projected_impl(language_model& model, double rate, double clip, typename optimizer_type::reference_fn reference,
                 Projector projector, const projection_settings& s)
      : impl(model, rate, clip),
        wrapped_(adamw, model->named_parameters(), std::move(reference), std::move(projector),
                 {.where = s.update_space ? ogpsa::torch::placement::update : ogpsa::torch::placement::gradient,
                  .families = s.matrix_side ? ogpsa::torch::family_chooser(ogpsa::torch::right_for_matrices)
                                            : ogpsa::torch::family_chooser(ogpsa::torch::flat_blocks)}) {}

  void step() override {
    if (wrapped_.refresh_due()) {  // timed apart: the refresh cost is reported separately
      const auto start = clock_type::now();
      wrapped_.refresh();
      timing.refresh_seconds += seconds_since(start);
      ++timing.refreshes;
    }
    wrapped_.project();
    clip(wrapped_.parameters());
    wrapped_.step();
  }

  std::vector<stage_optimizer::subspace> subspaces() const override {
    std::vector<stage_optimizer::subspace> out;
    const auto& p = wrapped_.projector();
    for (std::size_t i = 0; i < wrapped_.names().size(); ++i) {
      const auto id = *p.find(wrapped_.names()[i]);
      out.push_back({wrapped_.names()[i], wrapped_.parameters()[i], p.family_of(id), p.subspace_of(id)->basis});
    }
    return out;
  }

 private:
  optimizer_type wrapped_;
};

using svd_projector = ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<float>>;

/// The reference closure of a gradient-based basis: one sample per reference batch.
auto reference_gradients(language_model& model, std::vector<batch> batches) {
  return [model, batches = std::move(batches)](ogpsa::torch::reference_pass& pass) mutable {
    for (const batch& b : batches) pass.feed(answer_loss(model->forward(b.tokens), b));
  };
}

/// The reference closure of input-space (GPM) bases: every linear layer's inputs at the real
/// (non-padding) positions of the reference set, as the vectors its right basis should span.
auto reference_inputs(language_model& model, std::vector<batch> batches) {
  return [model, batches = std::move(batches)](ogpsa::torch::reference_pass& pass) mutable {
    torch::NoGradGuard no_grad;
    const recording inputs(model);
    for (const batch& b : batches) model->forward(b.tokens);
    std::vector<torch::Tensor> real;
    for (const batch& b : batches) real.push_back(b.real.reshape({-1}));
    for (const linear& l : model->linears()) {
      std::vector<torch::Tensor> rows;
      for (std::size_t i = 0; i < batches.size(); ++i) rows.push_back(l->inputs[i].index({real[i]}));
      pass.feed_vectors(l->weight, torch::cat(rows));
    }
  };
}

std::unique_ptr<stage_optimizer::impl> make_impl(const method& m, stage_kind kind, language_model& model,
                                                 const dataset& data, const options& o, double rate) {
  if (m.kind != method_kind::ogpsa) return std::make_unique<plain_impl>(model, rate, o.clip);
  const projection_settings& s = m.projection;
  const ogpsa::every_n_steps schedule{static_cast<std::size_t>(kind == stage_kind::dpo ? s.refresh_dpo : s.refresh_sft)};
  auto batches = split_into_batches(exchanges(data.reference), o.reference_batches, o.model.context);
  if (s.source == basis_source::mean_gradient)
    return std::make_unique<projected_impl<ogpsa::published_projector>>(
        model, rate, o.clip, reference_gradients(model, std::move(batches)),
        ogpsa::published_projector({}, {}, schedule), s);
  const ogpsa::exact_svd estimator =
      s.rank ? ogpsa::exact_svd{.rank = *s.rank} : ogpsa::exact_svd{.energy = s.energy};
  auto reference = s.source == basis_source::layer_inputs
                       ? projected_impl<svd_projector>::optimizer_type::reference_fn(reference_inputs(model, std::move(batches)))
                       : reference_gradients(model, std::move(batches));
  return std::make_unique<projected_impl<svd_projector>>(model, rate, o.clip, std::move(reference),
                                                         svd_projector(estimator, {}, schedule), s);
}

}  // namespace

language_model prepare_model(const method& m, const weights& start, const options& o, std::uint64_t seed) {
  auto model = make_model(o.model, start, seed);
  if (m.kind == method_kind::lora) model->add_adapters(o.lora_rank, o.lora_alpha);
  // Input-space bases: biases and norm scales read a constant or per-coordinate input that every
  // reference input shares, so projection would leave nothing of their gradients; the embedding
  // rows of the tokens the reference set uses likewise. They are frozen instead.
  if (m.kind == method_kind::ogpsa && m.projection.source == basis_source::layer_inputs) {
    for (auto& p : model->parameters()) p.set_requires_grad(false);
    for (auto& l : model->linears()) l->weight.set_requires_grad(true);
  }
  return model;
}

stage_optimizer::stage_optimizer(const method& m, stage_kind kind, language_model& model, const dataset& data,
                                 const options& o, double learning_rate)
    : impl_(make_impl(m, kind, model, data, o, learning_rate)) {}

stage_optimizer::~stage_optimizer() = default;

void stage_optimizer::zero_grad() { impl_->adamw.zero_grad(); }

void stage_optimizer::set_learning_rate(double rate) {
  for (auto& group : impl_->adamw.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(rate);
}

void stage_optimizer::step() { impl_->step(); }

const stage_timing& stage_optimizer::timing() const { return impl_->timing; }

std::vector<stage_optimizer::subspace> stage_optimizer::subspaces() const { return impl_->subspaces(); }

stage_result train_stage(stage_kind kind, const method& m, const weights& start, const dataset& data,
                         const options& o, int seed, const std::string& label) {
  const auto started = clock_type::now();
  const std::uint64_t stream = seed_of(seed, name_of(kind));  // the same batches for every method
  auto model = prepare_model(m, start, o, stream);
  const stage_settings s = settings_of(kind, o);
  const double rate_scale = m.kind == method_kind::lora ? o.lora_lr_scale : 1.0;
  stage_optimizer optimizer(m, kind, model, data, o, rate_scale * s.learning_rate);
  const objective next_loss = make_objective(kind, m, model, data, o, stream);
  const auto points = sweep_steps(kind, s.steps, o.sweep_points);

  stage_result result;
  progress bar(label, s.steps);
  double smoothed = 0;
  for (std::int64_t step = 1; step <= s.steps; ++step) {
    optimizer.set_learning_rate(rate_scale * learning_rate(kind, s, step - 1));
    optimizer.zero_grad();
    const auto loss = next_loss();
    loss.backward();
    optimizer.step();
    const double value = loss.item<double>();
    smoothed = step == 1 ? value : 0.95 * smoothed + 0.05 * value;
    bar.update(step, smoothed);
    if (std::find(points.begin(), points.end(), step) != points.end()) {
      result.points.push_back({step, evaluate(model, data.evaluation)});
      result.snapshots.push_back(snapshot(model));
    }
  }
  bar.finish();
  result.timing = optimizer.timing();
  result.timing.seconds = seconds_since(started);
  return result;
}

namespace {

/// A model, its optimizer and its SFT batches, for timing steps.
struct timed_run {
  timed_run(const method& how, const method& prepared_as, const weights& start, const dataset& data, const options& o)
      : model(prepare_model(prepared_as, start, o, 1)),
        optimizer(how, stage_kind::sft, model, data, o, o.sft.learning_rate),
        loss(make_objective(stage_kind::sft, how, model, data, o, 7)) {}

  /// Milliseconds of a whole step (forward, backward, update), or of its update alone.
  double step(bool whole) {
    optimizer.zero_grad();
    const auto t = clock_type::now();
    loss().backward();
    const auto u = clock_type::now();
    optimizer.step();
    return 1e3 * std::chrono::duration<double>(clock_type::now() - (whole ? t : u)).count();
  }

  language_model model;
  stage_optimizer optimizer;
  objective loss;
  std::vector<double> ms;
};

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

}  // namespace

overhead measure_overhead(const method& m, const weights& start, const dataset& data, const options& o, int steps) {
  const method naive{"naive", "", method_kind::naive, {}};
  method timed = m;  // no refresh during the measurement: one before it, timed apart
  timed.projection.refresh_sft = steps + 1;
  method plain = timed;  // AdamW alone on the parameters the method trains
  plain.kind = method_kind::naive;
  timed_run reference(naive, naive, start, data, o), projected(timed, timed, start, data, o),
      unprojected(plain, timed, start, data, o);
  for (int i = 0; i <= steps; ++i) {  // step 0 warms up (and runs the method's one refresh)
    const double a = reference.step(true), b = projected.step(false), c = unprojected.step(false);
    if (i == 0) continue;
    reference.ms.push_back(a);
    projected.ms.push_back(b);
    unprojected.ms.push_back(c);
  }
  return {median(reference.ms), median(unprojected.ms), median(projected.ms),
          1e3 * projected.optimizer.timing().refresh_seconds};
}

}  // namespace sft_dpo
