// Quickstart: two conflicting objectives on raw buffers, trained with and without OGPSA.
//
// A linear model theta (d weights) first learns a "capability" regression task whose inputs span
// a 10-dimensional subspace. It is then trained only on a conflicting "safety" task whose inputs
// span the whole space. Plain gradient descent on the safety loss undoes the capability; projecting
// every safety gradient onto the orthogonal complement of the capability-gradient subspace keeps it.
//
// Three runs of the safety stage: naive; the published method (mean reference gradient, rank 1);
// ogpsa's exact_svd estimator (rank 10, from per-example reference gradients).
// `--check` exits non-zero unless the rank-10 run keeps the capability while learning safety.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <vector>

#include <ogpsa/ogpsa.hpp>

namespace {

constexpr int dims = 200, capability_rank = 10, capability_examples = 400, safety_examples = 300;
constexpr int reference_examples = 64, safety_steps = 300, refresh_every = 20;
constexpr float safety_rate = 0.05f;

using vec = std::vector<float>;

float dot(const float* a, const float* b) {
  float s = 0;
  for (int i = 0; i < dims; ++i) s += a[i] * b[i];
  return s;
}

/// Examples (rows of `inputs`) and their regression targets.
struct task {
  vec inputs;
  vec targets;
  int size() const { return static_cast<int>(targets.size()); }
  const float* input(int i) const { return inputs.data() + static_cast<std::size_t>(i) * dims; }
  float residual(const vec& theta, int i) const { return dot(input(i), theta.data()) - targets[i]; }

  double loss(const vec& theta) const {
    double s = 0;
    for (int i = 0; i < size(); ++i) s += 0.5 * residual(theta, i) * residual(theta, i);
    return s / size();
  }
  /// Mean gradient over examples [first, first + count); `count` 1 gives one example's gradient.
  void gradient(const vec& theta, int first, int count, vec& out) const {
    std::fill(out.begin(), out.end(), 0.0f);
    for (int i = first; i < first + count; ++i) {
      const float r = residual(theta, i) / static_cast<float>(count);
      for (int j = 0; j < dims; ++j) out[j] += r * input(i)[j];
    }
  }
};

struct problem {
  task capability, safety;

  explicit problem(std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal;
    vec basis(static_cast<std::size_t>(capability_rank) * dims), truth(dims), shift(dims);
    for (float& x : basis) x = normal(rng) / std::sqrt(float(dims));
    for (float& x : truth) x = normal(rng);
    for (float& x : shift) x = normal(rng);
    for (int i = 0; i < capability_examples; ++i) {  // inputs in the span of `basis`
      vec x(dims, 0.0f);
      for (int r = 0; r < capability_rank; ++r) {
        const float w = normal(rng) * 3.0f;
        for (int j = 0; j < dims; ++j) x[j] += w * basis[r * dims + j];
      }
      add(capability, x, dot(x.data(), truth.data()) + 0.1f * normal(rng));
    }
    for (int i = 0; i < safety_examples; ++i) {  // inputs anywhere; targets disagree with `truth`
      vec x(dims);
      for (float& v : x) v = normal(rng) / std::sqrt(float(dims)) * 3.0f;
      float target = 0;
      for (int j = 0; j < dims; ++j) target += x[j] * (truth[j] + shift[j]);
      add(safety, x, target);
    }
  }

  static void add(task& t, const vec& x, float y) {
    t.inputs.insert(t.inputs.end(), x.begin(), x.end());
    t.targets.push_back(y);
  }

  vec base_model() const {  // gradient descent on the capability task alone
    vec theta(dims, 0.0f), g(dims);
    for (int step = 0; step < 2000; ++step) {
      capability.gradient(theta, 0, capability.size(), g);
      for (int j = 0; j < dims; ++j) theta[j] -= 0.1f * g[j];
    }
    return theta;
  }
};

struct losses {
  double capability, safety;
};

/// Re-estimates the projector's subspace from capability gradients at the current weights:
/// per-example gradients as snapshots of one reference set.
template <class Projector>
void refresh(Projector& projector, ogpsa::block_id block, const problem& p, const vec& theta) {
  vec reference(dims);
  projector.begin_reference_pass();
  for (int i = 0; i < reference_examples; ++i) {
    p.capability.gradient(theta, i, 1, reference);
    projector.feed(block, ogpsa::view(std::as_const(reference)));
  }
  projector.finish_reference_pass();
}

/// The safety stage; every `record_every` steps appends the losses to `history`.
template <class Projector>
std::vector<losses> safety_stage(const problem& p, vec theta, Projector* projector) {
  vec g(dims);
  std::optional<ogpsa::block_id> block;
  if (projector) block = projector->add_block("theta", ogpsa::view(g));
  std::vector<losses> history{{p.capability.loss(theta), p.safety.loss(theta)}};
  for (int step = 1; step <= safety_steps; ++step) {
    if (projector && projector->refresh_due()) refresh(*projector, *block, p, theta);
    p.safety.gradient(theta, 0, p.safety.size(), g);
    if (projector) projector->project();  // g now leaves the capability subspace alone
    for (int j = 0; j < dims; ++j) theta[j] -= safety_rate * g[j];
    if (step % 50 == 0) history.push_back({p.capability.loss(theta), p.safety.loss(theta)});
  }
  return history;
}

}  // namespace

int main(int argc, char** argv) {
  const bool check = argc > 1 && std::strcmp(argv[1], "--check") == 0;
  const problem p(2026);
  const vec base = p.base_model();

  using published = ogpsa::published_projector;
  using ranked = ogpsa::projector<ogpsa::exact_svd>;
  published mean_direction({}, {}, ogpsa::every_n_steps{refresh_every});
  ranked rank10(ogpsa::exact_svd{.rank = capability_rank}, {}, ogpsa::every_n_steps{refresh_every});
  const auto naive = safety_stage<published>(p, base, nullptr);
  const auto one = safety_stage(p, base, &mean_direction);
  const auto ten = safety_stage(p, base, &rank10);

  std::printf("Safety training of a model that first learned a capability task (losses, lower is better)\n\n");
  std::printf("%5s | %-21s | %-21s | %-21s\n", "", "naive", "published (rank 1)", "exact_svd (rank 10)");
  std::printf("%5s | %10s %10s | %10s %10s | %10s %10s\n", "step", "capability", "safety", "capability",
              "safety", "capability", "safety");
  for (std::size_t r = 0; r < naive.size(); ++r)
    std::printf("%5zu | %10.4f %10.4f | %10.4f %10.4f | %10.4f %10.4f\n", r * 50, naive[r].capability,
                naive[r].safety, one[r].capability, one[r].safety, ten[r].capability, ten[r].safety);

  const losses start = naive.front(), plain = naive.back(), kept = ten.back();
  std::printf("\nCapability loss rose by %.4f with naive tuning, %.4f with the published rank-1 "
              "projection\nand %.4f with the rank-10 capability subspace, whose safety loss fell by "
              "%.0f%% of naive's fall.\n",
              plain.capability - start.capability, one.back().capability - start.capability,
              kept.capability - start.capability,
              100.0 * (start.safety - kept.safety) / (start.safety - plain.safety));
  if (!check) return 0;
  const bool capability_kept = kept.capability - start.capability < 0.01 * (plain.capability - start.capability);
  const bool safety_learned = start.safety - kept.safety > 0.5 * (start.safety - plain.safety);
  return capability_kept && safety_learned ? 0 : 1;
}
