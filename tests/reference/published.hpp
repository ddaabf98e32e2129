#pragma once
// An independent, deliberately plain re-implementation of the published OGPSA formulas
// (include/ogpsa/PUBLISHED.md), in double precision on std::vector, used to check ogpsa's output.
// It shares no code with ogpsa.

#include <array>
#include <cmath>
#include <cstddef>
#include <optional>
#include <vector>

namespace published {

using vec = std::vector<double>;

inline double dot(const vec& a, const vec& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
inline double norm(const vec& a) { return std::sqrt(dot(a, a)); }

/// One reference set: sum of batch gradients each divided by the number of batches, normalized
/// with +1e-10; dropped when the norm is <= 1e-10.
inline std::optional<vec> direction(const std::vector<vec>& batches) {
  vec mean(batches.front().size(), 0.0);
  for (const vec& g : batches)
    for (std::size_t i = 0; i < g.size(); ++i) mean[i] += g[i] / static_cast<double>(batches.size());
  const double n = norm(mean);
  if (n <= 1e-10) return std::nullopt;
  for (double& x : mean) x /= n + 1e-10;
  return mean;
}

/// g - (g.b / (b.b + 1e-8)) b, or the two-direction Gram-Schmidt form.
inline vec project(vec g, const std::vector<vec>& dirs) {
  if (dirs.size() == 1) {
    const vec& b = dirs[0];
    const double c = dot(g, b) / (dot(b, b) + 1e-8);
    for (std::size_t i = 0; i < g.size(); ++i) g[i] -= c * b[i];
    return g;
  }
  if (dirs.size() != 2) return g;
  vec u1 = dirs[0];
  const double n1 = norm(u1);
  for (double& x : u1) x /= n1 + 1e-8;
  vec w = dirs[1];
  const double c21 = dot(w, u1);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] -= c21 * u1[i];
  const double nw = norm(w);
  vec u2(w.size(), 0.0);
  if (!(nw + 1e-8 < 1e-6))
    for (std::size_t i = 0; i < w.size(); ++i) u2[i] = w[i] / (nw + 1e-8);
  const double a = dot(g, u1), b = dot(g, u2);
  for (std::size_t i = 0; i < g.size(); ++i) g[i] -= a * u1[i] + b * u2[i];
  return g;
}

/// The `threshold` mode: rank 1 only; otherwise the plain projection.
inline vec threshold(vec g, const std::vector<vec>& dirs, double base_scale) {
  if (dirs.size() != 1) return project(g, dirs);
  const vec& b = dirs[0];
  const double cos = dot(g, b) / ((norm(g) + 1e-8) * (norm(b) + 1e-8));
  if (cos < 0) return project(g, dirs);
  if (cos > 0)
    for (double& x : g) x *= base_scale;
  return g;
}

/// The release's handling of one tensor across refreshes: one direction per reference set (one
/// or two sets), kept in a dictionary that a refresh overwrites only where the set's mean is not
/// (near) zero, so a zero mean keeps the previous refresh's direction (stale).
class release_tensor {
 public:
  /// Which trainer's threshold mode: with two directions SFT projects, DPO leaves g unchanged.
  enum class trainer { sft, dpo };

  /// One refresh; sets[s] holds reference set s's batch gradients.
  void refresh(const std::vector<std::vector<vec>>& sets) {
    for (std::size_t s = 0; s < sets.size() && s < directions_.size(); ++s)
      if (std::optional<vec> d = direction(sets[s])) directions_[s] = *d;
  }

  /// The hard projection. No set-1 direction: unchanged, even when set 2 has one.
  vec project(const vec& g) const {
    if (!directions_[0]) return g;
    if (!directions_[1]) return published::project(g, {*directions_[0]});
    return published::project(g, {*directions_[0], *directions_[1]});
  }

  /// The threshold mode. Two directions take the two-set branch even when they are parallel.
  vec threshold(const vec& g, double base_scale, trainer t) const {
    if (!directions_[0]) return g;
    if (!directions_[1]) return published::threshold(g, {*directions_[0]}, base_scale);
    return t == trainer::sft ? published::project(g, {*directions_[0], *directions_[1]}) : g;
  }

 private:
  std::array<std::optional<vec>, 2> directions_;
};

}  // namespace published
