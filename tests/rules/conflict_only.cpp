#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/ogpsa.hpp>

#include "support.hpp"

using ogpsa::conflict_only;
using ogpsa::family;
namespace t = ogpsa::test;

TEST_CASE_TEMPLATE("per-direction mode removes only negative coefficients", T, float, double) {
  static_assert(ogpsa::projection_rule<conflict_only>);
  T c[4] = {T(-1), T(2), T(0), T(-3)};
  CHECK(conflict_only{}.apply(c, 4) == T(1));
  CHECK(c[0] == T(-1));
  CHECK(c[1] == T(0));
  CHECK(c[2] == T(0));
  CHECK(c[3] == T(-3));
  CHECK_FALSE(conflict_only{}.scales_gradient());
}

TEST_CASE_TEMPLATE("threshold mode with one direction follows the published rule", T, float, double) {
  const conflict_only rule{.behaviour = conflict_only::mode::threshold, .base_scale = 0.5};
  CHECK(rule.scales_gradient());
  T conflicting[1] = {T(-2)};
  CHECK(rule.apply(conflicting, 1) == T(1));
  CHECK(conflicting[0] == T(-2));  // removed
  T agreeing[1] = {T(3)};
  CHECK(rule.apply(agreeing, 1) == T(0.5));  // whole gradient scaled, nothing removed
  CHECK(agreeing[0] == T(0));
  T orthogonal[1] = {T(0)};
  CHECK(rule.apply(orthogonal, 1) == T(1));
  CHECK(orthogonal[0] == T(0));
}

TEST_CASE_TEMPLATE("threshold mode with two directions falls back to the plain projection", T, float, double) {
  const conflict_only rule{.behaviour = conflict_only::mode::threshold, .base_scale = 0.5};
  T c[2] = {T(1), T(-1)};
  CHECK(rule.apply(c, 2) == T(1));
  CHECK(c[0] == T(1));
  CHECK(c[1] == T(-1));
}

TEST_CASE("a negative or non-finite base_scale is rejected") {
  const auto threshold = [](double base_scale) {
    return conflict_only{.behaviour = conflict_only::mode::threshold, .base_scale = base_scale};
  };
  t::check_throws_with<ogpsa::invalid_argument>([&] { threshold(-1).validate(); },
                                                {"ogpsa::conflict_only::validate()", "base_scale", "-1"});
  t::check_throws_with<ogpsa::invalid_argument>(
      [&] { threshold(std::numeric_limits<double>::quiet_NaN()).validate(); }, {"base_scale", "nan"});
  t::check_throws_with<ogpsa::invalid_argument>(
      [&] { threshold(std::numeric_limits<double>::infinity()).validate(); }, {"base_scale", "inf"});
  t::check_throws_with<ogpsa::invalid_argument>(
      [&] { threshold(-std::numeric_limits<double>::infinity()).validate(); }, {"base_scale", "-inf"});
  for (double ok : {0.0, 0.5, 1.0, 3.0}) CHECK_NOTHROW(threshold(ok).validate());
}

TEST_CASE("conflict_only supports flat blocks only, in both modes, and add_block says so") {
  for (const conflict_only rule : {conflict_only{}, conflict_only{.behaviour = conflict_only::mode::threshold}}) {
    CHECK(rule.supports(family::flat));
    CHECK_FALSE(rule.supports(family::left));
    CHECK_FALSE(rule.supports(family::right));
    ogpsa::projector<ogpsa::exact_svd, conflict_only> p(ogpsa::exact_svd{.rank = 1}, rule);
    std::vector<float> g(12);
    for (family f : {family::left, family::right}) {
      CAPTURE(f);
      t::check_throws_with<ogpsa::invalid_argument>(
          [&] { p.add_block("w", ogpsa::view(g.data(), 3, 4), f); },
          {"ogpsa::projector::add_block()", "conflict_only supports flat blocks only", "block 'w'",
           f == family::left ? "is left" : "is right"});
    }
    CHECK(p.block_count() == 0);
    CHECK_NOTHROW(p.add_block("w", ogpsa::view(g.data(), 3, 4), family::flat));
  }
}

namespace {

/// A known reference loss, L(w) = sum_j softplus(x_j^T w), at a point w: its per-example
/// gradients r_j = sigmoid(x_j^T w) x_j, computed here from its definition.
struct reference_loss {
  t::matrix<double> x;  // d x m, one example per column
  t::matrix<double> w;  // d x 1

  t::matrix<double> gradients() const {
    t::matrix<double> r = x;
    for (Eigen::Index j = 0; j < x.cols(); ++j) r.col(j) *= 1 / (1 + std::exp(-x.col(j).dot(w.col(0))));
    return r;
  }
};

/// Over many random cases: builds a basis from the reference gradients of a random reference
/// loss (through the projector and estimator `e`), draws a safety gradient g independently and
/// flips it if needed so that the step -lr g raises the loss to first order (sum_j r_j^T g < 0),
/// projects it, and checks that the projected step does not: sum_j r_j^T P(g) >= -tolerance.
/// Also checks P(g) against the rule's definition, with the basis read after the fact. An
/// estimator that adds `regularizer` to norms while normalizing (the published mean_gradient)
/// leaves directions of norm 1 - regularizer / |mean|: that much of a removed component stays.
template <class T, class Estimator>
void check_first_order(Estimator e, Eigen::Index examples, std::uint32_t seed, double regularizer = 0) {
  constexpr Eigen::Index d = 300;
  constexpr int cases = 200;
  std::mt19937 rng(seed);
  const auto next_seed = [&] { return static_cast<std::uint32_t>(rng()); };
  int raised = 0, partly_removed = 0, untouched = 0;
  for (int c = 0; c < cases; ++c) {
    CAPTURE(c);
    const reference_loss loss{t::random_matrix<double>(d, examples, next_seed()), 0.1 * t::random_matrix<double>(d, 1, next_seed())};
    const t::matrix<double> r = loss.gradients();
    ogpsa::projector<Estimator, conflict_only, ogpsa::every_n_steps, ogpsa::storage<T>> p(e);
    t::matrix<T> g = t::random_matrix<T>(d, 1, next_seed());
    if ((r.transpose() * t::to_double(g)).sum() > 0) g = -g;
    const t::matrix<double> before = t::to_double(g);
    const double rise = -(r.transpose() * before).sum();  // d/dlr of L(w - lr g) at 0
    if (!(rise > 0)) continue;  // g exactly orthogonal to the loss's gradient
    ++raised;
    const auto id = p.add_block("w", ogpsa::view(g));
    p.begin_reference_pass();
    for (Eigen::Index j = 0; j < examples; ++j) {
      const t::matrix<T> rj = r.col(j).cast<T>();
      p.feed(id, ogpsa::view(rj));
    }
    p.finish_reference_pass();
    p.project();
    const t::matrix<double> after = t::to_double(g);
    const double tolerance = (64 * t::unit_roundoff<T>() + 4 * regularizer / r.rowwise().mean().norm()) *
                             r.rowwise().sum().norm() * before.norm();
    CHECK(-(r.transpose() * after).sum() <= tolerance);  // the projected step does not raise L
    // The definition: every direction whose coefficient is negative removed, the others kept.
    const t::matrix<double> u = t::to_double(p.subspace_of(id)->basis);
    t::matrix<double> coefficients = u.transpose() * before;
    partly_removed += (coefficients.array() > 0).any() && (coefficients.array() < 0).any();
    coefficients = coefficients.cwiseMin(0.0);
    CHECK((after - (before - u * coefficients)).norm() <= 16 * t::tolerance<T>() * before.norm());
    // The opposite gradient lowers L; where it agrees with every direction, clearly enough that
    // rounding cannot flip a sign, nothing of it is removed.
    g = (-before).cast<T>();
    const t::matrix<T> agreeing = g;
    p.project();
    if (((u.transpose() * t::to_double(agreeing)).array() > 1e-3 * before.norm()).all()) {
      ++untouched;
      CHECK(t::same_bits(g, agreeing));
    }
  }
  CHECK(raised > cases * 9 / 10);
  CHECK(untouched > 0);
  if (examples > 1 && !std::is_same_v<Estimator, ogpsa::mean_gradient>)
    CHECK(partly_removed > cases / 10);  // some coefficients removed and others kept
}

}  // namespace

// The reference loss's gradient (the sum of the r_j) lies in the subspace when the rank covers
// the reference gradients: the estimators orient each direction along that sum, so the removed
// components are exactly those that would raise the loss.
TEST_CASE_TEMPLATE("per-direction conflict_only does not raise the reference loss to first order on flat blocks", T,
                   float, double) {
  for (Eigen::Index examples : {1, 2, 4}) {
    CAPTURE(examples);
    check_first_order<T>(ogpsa::exact_svd{.rank = examples}, examples, 1000 + static_cast<std::uint32_t>(examples));
    check_first_order<T>(ogpsa::randomized_svd{.rank = examples}, examples, 2000 + static_cast<std::uint32_t>(examples));
  }
  const ogpsa::mean_gradient published;  // one reference set: its mean direction
  check_first_order<T>(published, 3, 3000, published.orthogonalization_epsilon + published.norm_epsilon);
}

TEST_CASE_TEMPLATE("threshold mode with several directions projects or leaves the gradient unchanged", T,
                   float, double) {
  for (const ogpsa::index_t k : {2, 3}) {
    CAPTURE(k);
    const conflict_only sft{.behaviour = conflict_only::mode::threshold, .base_scale = 0.5};
    T c[3] = {T(1), T(-2), T(3)};
    CHECK(sft.apply(c, k) == T(1));  // every coefficient removed: the plain projection
    CHECK(c[0] == T(1));
    CHECK(c[1] == T(-2));
    CHECK(c[2] == T(3));
    const conflict_only dpo{.behaviour = conflict_only::mode::threshold,
                            .base_scale = 0.5,
                            .several_directions = conflict_only::fallback::unchanged};
    T d[3] = {T(1), T(-2), T(3)};
    CHECK(dpo.apply(d, k) == T(1));  // nothing removed, nothing scaled
    for (ogpsa::index_t i = 0; i < k; ++i) CHECK(d[i] == T(0));
    CHECK(d[2] == (k == 3 ? T(0) : T(3)));  // past k: untouched
  }
}
