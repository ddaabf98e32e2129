#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/ogpsa.hpp>

#include "policies.hpp"
#include "sharded_case.hpp"
#include "support.hpp"
#include "thread_reducer.hpp"

namespace t = ogpsa::test;
using ogpsa::family;

namespace {

struct recorder {
  std::vector<ogpsa::refresh_info> refreshes;
  std::vector<ogpsa::projection_info> projections;
  std::vector<ogpsa::degenerate_info> degenerate;
  std::vector<std::string> non_finite;
  void on_refresh(const ogpsa::refresh_info& i) { refreshes.push_back(i); }
  void on_projection(const ogpsa::projection_info& i) { projections.push_back(i); }
  void on_degenerate(const ogpsa::degenerate_info& i) { degenerate.push_back(i); }
  void on_non_finite(const ogpsa::non_finite_info& i) { non_finite.emplace_back(i.block); }
};

struct refresh_counter {
  int count = 0;
  void on_refresh(const ogpsa::refresh_info&) { ++count; }
};

using wide_matrix = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic>;

/// A block's target-space vectors as the columns of a matrix (see `ogpsa::family`): vec(G) for a
/// flat block, G for a left block, G^T for a right one.
template <class M>
wide_matrix target_space(const M& g, family f) {
  const wide_matrix w = g.template cast<long double>();
  if (f == family::flat) return w.reshaped(w.size(), 1);
  return f == family::left ? w : wide_matrix(w.transpose());
}

/// The gradient (rows x cols) whose target-space vectors are the columns of x.
template <class T>
t::matrix<T> from_target_space(const wide_matrix& x, family f, Eigen::Index rows, Eigen::Index cols) {
  const wide_matrix g = f == family::flat ? wide_matrix(x.reshaped(rows, cols))
                                          : f == family::left ? x : wide_matrix(x.transpose());
  return g.template cast<T>();
}

long double relative_error(double measured, long double reference) {
  return std::abs(static_cast<long double>(measured) - reference) / reference;
}

/// The numbers of `projection_info` computed from the block's target-space vectors before and
/// after a projection, and its basis, in long double.
struct expected_info {
  long double gradient_norm, projected_norm, removed_fraction, cosine_before, cosine_after;

  expected_info(const wide_matrix& u, const wide_matrix& before, const wide_matrix& after)
      : gradient_norm(before.norm()),
        projected_norm(after.norm()),
        removed_fraction((before - after).norm() / before.norm()),
        cosine_before((u.transpose() * before).norm() / before.norm()),
        cosine_after((u.transpose() * after).norm() / after.norm()) {}

  /// Checks `info` against these: relative errors below `tolerance`, fractions and cosines also
  /// within an absolute `floor` (rounding noise has no relative accuracy; a fraction may be 0).
  void check(const ogpsa::projection_info& info, double tolerance, double floor) const {
    CHECK(relative_error(info.gradient_norm, gradient_norm) <= tolerance);
    CHECK(relative_error(info.projected_norm, projected_norm) <= tolerance);
    CHECK(std::abs(info.removed_fraction - removed_fraction) <= tolerance * removed_fraction + floor);
    CHECK(std::abs(info.cosine_before - cosine_before) <= tolerance * cosine_before + floor);
    CHECK(std::abs(info.cosine_after - cosine_after) <= tolerance * cosine_after + floor);
  }
};

}  // namespace

TEST_CASE("callbacks are detected by the hooks they have") {
  CHECK(ogpsa::detail::has_on_refresh<refresh_counter>);
  CHECK_FALSE(ogpsa::detail::has_on_projection<refresh_counter>);
  CHECK(ogpsa::detail::wants_projection_info<refresh_counter, recorder>);
  CHECK_FALSE(ogpsa::detail::wants_projection_info<refresh_counter>);
}

TEST_CASE("refresh and projection diagnostics report what happened") {
  const t::matrix<double> refs = t::random_matrix<double>(100, 2, 1);
  t::matrix<double> g = t::random_matrix<double>(100, 1, 2);
  ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<double>> p(
      ogpsa::exact_svd{.rank = 2});
  const auto id = p.add_block("w", ogpsa::view(g));
  recorder rec;
  refresh_counter counter;
  p.begin_reference_pass();
  for (Eigen::Index j = 0; j < 2; ++j) p.feed(id, ogpsa::view(refs.middleCols(j, 1)));
  p.finish_reference_pass(rec, counter);
  REQUIRE(rec.refreshes.size() == 1);
  CHECK(counter.count == 1);
  CHECK(rec.refreshes[0].total_rank == 2);
  CHECK(rec.refreshes[0].refreshes == 1);

  const wide_matrix before = g.cast<long double>();
  const wide_matrix u = p.subspace_of(id)->basis.cast<long double>();
  p.project(rec, counter);
  REQUIRE(rec.projections.size() == 1);
  const auto& info = rec.projections[0];
  const wide_matrix after = g.cast<long double>();
  CHECK(info.block == "w");
  CHECK(info.index == 0);
  CHECK(info.kind == family::flat);
  CHECK(info.rank == 2);
  CHECK(relative_error(info.gradient_norm, before.norm()) <= 1e-14);
  CHECK(relative_error(info.projected_norm, after.norm()) <= 1e-14);
  CHECK(relative_error(info.removed_fraction, (before - after).norm() / before.norm()) <= 1e-14);
  CHECK(relative_error(info.cosine_before, (u.transpose() * before).norm() / before.norm()) <= 1e-14);
  // What rounding left in the subspace, about 1e-16 here: only its size is meaningful.
  CHECK(std::abs(info.cosine_after - (u.transpose() * after).norm() / after.norm()) <= 1e-14);
  CHECK(info.scale == 1.0);
}

TEST_CASE("degenerate directions are reported, not hidden") {
  std::vector<float> g(30), ref(30, 1.0f);
  ogpsa::published_projector p;
  const auto id = p.add_block("w", ogpsa::view(g));
  recorder rec;
  p.begin_reference_pass();
  p.feed(id, ogpsa::view(std::as_const(ref)), 0);
  p.feed(id, ogpsa::view(std::as_const(ref)), 1);  // parallel to set 0
  p.finish_reference_pass(rec);
  REQUIRE(rec.degenerate.size() == 1);
  CHECK(rec.degenerate[0].kept == 1);
  CHECK(rec.degenerate[0].dropped == 1);
  CHECK(rec.refreshes[0].dropped == 1);
}

TEST_CASE("a NaN in a training gradient is reported and the gradient left as it was") {
  std::vector<float> g(30, 1.0f), ref(30);
  for (std::size_t i = 0; i < 30; ++i) ref[i] = static_cast<float>(i);
  ogpsa::published_projector p;
  const auto id = p.add_block("w", ogpsa::view(g));
  p.begin_reference_pass();
  p.feed(id, ogpsa::view(std::as_const(ref)));
  p.finish_reference_pass();
  g[4] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> before = g;
  recorder rec;
  p.project(rec);
  CHECK(rec.non_finite == std::vector<std::string>{"w"});
  CHECK(rec.projections.empty());
  CHECK(std::memcmp(g.data(), before.data(), g.size() * sizeof(float)) == 0);  // every element, bit for bit
}

// Diagnostics matter most when a gradient lies almost in the subspace: then |g_after| is a tiny
// difference of large numbers, and whatever is left in the subspace after projection is the
// rounding of the projection itself. The reference is computed in long double from the values
// the projector wrote and the basis it holds, not from its own sums.
TEST_CASE_TEMPLATE("projected norm and cosine after are measured, also for gradients almost in the subspace", T,
                   float, double) {
  constexpr Eigen::Index rows = 60, cols = 50, rank = 3;
  for (family f : {family::flat, family::left, family::right}) {
    ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<T>> p(
        ogpsa::exact_svd{.rank = rank});
    t::matrix<T> g = t::matrix<T>::Zero(rows, cols);
    const auto id = p.add_block("w", ogpsa::view(g), f);
    p.begin_reference_pass();
    for (std::uint32_t i = 0; i < 4; ++i) {
      const t::matrix<T> reference = t::random_matrix<T>(rows, cols, 10 + i);
      p.feed(id, ogpsa::view(reference));
    }
    p.finish_reference_pass();
    const wide_matrix u = p.subspace_of(id)->basis.template cast<long double>();
    const Eigen::Index vectors = f == family::flat ? 1 : target_space(g, f).cols();
    for (double eps : {1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6}) {
      CAPTURE(f);
      CAPTURE(eps);
      const wide_matrix in_subspace = u * t::random_matrix<double>(rank, vectors, 20).cast<long double>();
      const wide_matrix noise = t::random_matrix<double>(u.rows(), vectors, 21).cast<long double>();
      g = from_target_space<T>(in_subspace + eps * in_subspace.norm() / noise.norm() * noise, f, rows, cols);
      const wide_matrix before = target_space(g, f);
      recorder rec;
      p.project(id, ogpsa::view(g), rec);
      REQUIRE(rec.projections.size() == 1);
      const ogpsa::projection_info& info = rec.projections[0];
      const wide_matrix after = target_space(g, f);
      const long double norm = after.norm(), cosine = (u.transpose() * after).norm() / norm;
      CHECK(relative_error(info.gradient_norm, before.norm()) <= t::tolerance<T>());
      CHECK(relative_error(info.removed_fraction, (before - after).norm() / before.norm()) <= t::tolerance<T>());
      CAPTURE(norm);
      CAPTURE(cosine);
      CAPTURE(info.projected_norm);
      CAPTURE(info.cosine_after);
      // |g_after| is a sum of squares in T's accumulator: no cancellation.
      CHECK(relative_error(info.projected_norm, norm) <= t::tolerance<T>());
      // U^T g_after is measured in that accumulator too: its error is a small multiple of the
      // unit roundoff times |g_after|, while what rounding left in the subspace is about that
      // times |g| = |g_after| / eps.
      CHECK(relative_error(info.cosine_after, cosine) <= eps / 2);
    }
  }
}

/// One gradient with a component `along` the rank-1 basis: the diagnostics describe what `rule`
/// wrote, and the scale is the one the rule chose for its coefficient.
template <class Rule>
void check_rule_diagnostics(const Rule& rule, double along) {
  CAPTURE(std::string(Rule::name));
  CAPTURE(along);
  ogpsa::projector<ogpsa::exact_svd, Rule, ogpsa::every_n_steps, ogpsa::storage<double>> p(
      ogpsa::exact_svd{.rank = 1}, rule);
  t::matrix<double> g = t::matrix<double>::Zero(500, 1);
  const auto id = p.add_block("w", ogpsa::view(g));
  const t::matrix<double> reference = t::random_matrix<double>(500, 1, 3);
  p.begin_reference_pass();
  p.feed(id, ogpsa::view(reference));
  p.finish_reference_pass();
  const wide_matrix u = p.subspace_of(id)->basis.template cast<long double>();
  g = t::random_matrix<double>(500, 1, 4) + along * p.subspace_of(id)->basis;
  const wide_matrix before = g.cast<long double>();
  double coefficient = (p.subspace_of(id)->basis.transpose() * g)(0, 0);
  const double scale = rule.apply(&coefficient, 1);
  recorder rec;
  p.project(rec);
  REQUIRE(rec.projections.size() == 1);
  expected_info(u, before, g.cast<long double>()).check(rec.projections[0], 1e-12, 1e-14);
  CHECK(rec.projections[0].scale == scale);
}

// Each rule with a gradient that agrees with the basis and one that conflicts with it: conflict_only
// removes the conflict and writes nothing for the other; its threshold mode scales the whole
// agreeing gradient.
TEST_CASE("every rule's diagnostics describe the gradient it wrote") {
  t::for_each_type<ogpsa::rules>([]<class Rule>() {
    for (const Rule& rule : t::rule_samples<Rule>())
      for (const double along : {3.0, -3.0}) check_rule_diagnostics(rule, along);
  });
}

// A block whose target rows are split across ranks is measured in pieces: the diagnostics must be
// the whole block's on every rank, as one process reports them.
TEST_CASE("sharded blocks report the whole block's diagnostics on every rank") {
  namespace sh = ogpsa::test::sharded;
  using ogpsa::sharding;
  const ogpsa::soft rule{.alpha = 0.5};  // leaves a measurable part in the subspace
  const ogpsa::exact_svd estimator{.rank = 3};
  const std::pair<family, sharding> cases[] = {
      {family::flat, sharding::rows}, {family::left, sharding::rows}, {family::right, sharding::columns}};
  for (const auto& [f, sharded_by] : cases) {
    CAPTURE(f);
    ogpsa::projector<ogpsa::exact_svd, ogpsa::soft, ogpsa::every_n_steps, ogpsa::storage<float>> single(estimator, rule);
    t::matrix<float> whole = sh::gradient();
    const auto id = single.add_block("w", ogpsa::view(whole), f);
    single.begin_reference_pass();
    for (const auto& r : sh::references(f)) single.feed(id, ogpsa::view(r));
    single.finish_reference_pass();
    recorder expected;
    single.project(expected);
    REQUIRE(expected.projections.size() == 1);
    const ogpsa::projection_info& e = expected.projections[0];
    t::run_ranks(3, [&](t::thread_reducer& reducer) {
      ogpsa::projector<ogpsa::exact_svd, ogpsa::soft, ogpsa::every_n_steps, ogpsa::storage<float>, t::thread_reducer>
          p(estimator, rule, {}, {}, reducer);
      t::matrix<float> mine = sh::piece(sh::gradient(), sharded_by, reducer.rank, 3);
      const auto block = p.add_block("w", ogpsa::view(mine), f, sharded_by);
      p.begin_reference_pass();
      for (const auto& r : sh::references(f)) {
        const t::matrix<float> part = sh::piece(r, sharded_by, reducer.rank, 3);
        p.feed(block, ogpsa::view(part));
      }
      p.finish_reference_pass();
      recorder rec;
      const std::size_t before = *reducer.calls;
      p.project(rec);
      CHECK(*reducer.calls - before == 2);  // the coefficients, then the measures
      REQUIRE(rec.projections.size() == 1);
      const ogpsa::projection_info& got = rec.projections[0];
      CHECK(got.gradient_norm == doctest::Approx(e.gradient_norm).epsilon(1e-5));
      CHECK(got.projected_norm == doctest::Approx(e.projected_norm).epsilon(1e-5));
      CHECK(got.removed_fraction == doctest::Approx(e.removed_fraction).epsilon(1e-5));
      CHECK(got.cosine_before == doctest::Approx(e.cosine_before).epsilon(1e-5));
      CHECK(got.cosine_after == doctest::Approx(e.cosine_after).epsilon(1e-5));
    });
  }
}

// Split by target columns, each rank holds whole target vectors: its numbers are its columns'.
TEST_CASE("blocks split by target columns report each rank's columns, without communicating") {
  namespace sh = ogpsa::test::sharded;
  using ogpsa::sharding;
  const std::pair<family, sharding> cases[] = {{family::left, sharding::columns}, {family::right, sharding::rows}};
  for (const auto& [f, sharded_by] : cases) {
    CAPTURE(f);
    t::run_ranks(2, [&](t::thread_reducer& reducer) {
      ogpsa::projector<ogpsa::exact_svd, ogpsa::soft, ogpsa::every_n_steps, ogpsa::storage<float>, t::thread_reducer>
          p(ogpsa::exact_svd{.rank = 3}, ogpsa::soft{.alpha = 0.5}, {}, {}, reducer);
      t::matrix<float> mine = sh::piece(sh::gradient(), sharded_by, reducer.rank, 2);
      const auto block = p.add_block("w", ogpsa::view(mine), f, sharded_by);
      p.begin_reference_pass();
      for (const auto& r : sh::references(f)) {
        const t::matrix<float> part = sh::piece(r, sharded_by, reducer.rank, 2);
        p.feed(block, ogpsa::view(part));
      }
      p.finish_reference_pass();
      const wide_matrix u = p.subspace_of(block)->basis.cast<long double>();
      const wide_matrix before = target_space(mine, f);
      recorder rec;
      const std::size_t calls = *reducer.calls;
      p.project(rec);
      CHECK(*reducer.calls == calls);
      REQUIRE(rec.projections.size() == 1);
      expected_info(u, before, target_space(mine, f)).check(rec.projections[0], 1e-5, 1e-6);
    });
  }
}

TEST_CASE("a block whose subspace came out empty reports its gradient as it was") {
  std::vector<float> g(300), zero(300, 0.0f);
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = static_cast<float>(i % 7) - 3.0f;
  ogpsa::published_projector p;
  const auto id = p.add_block("w", ogpsa::view(g));
  p.begin_reference_pass();
  p.feed(id, ogpsa::view(std::as_const(zero)));  // a zero reference gradient: no direction
  p.finish_reference_pass();
  REQUIRE(p.subspace_of(id)->rank() == 0);
  recorder rec;
  p.project(rec);
  REQUIRE(rec.projections.size() == 1);
  const ogpsa::projection_info& info = rec.projections[0];
  const double norm = Eigen::Map<const Eigen::VectorXf>(g.data(), 300).cast<double>().norm();
  CHECK(info.rank == 0);
  CHECK(info.gradient_norm == doctest::Approx(norm).epsilon(1e-6));
  CHECK(info.projected_norm == doctest::Approx(norm).epsilon(1e-6));
  CHECK(info.removed_fraction == 0);
  CHECK(info.cosine_before == 0);
  CHECK(info.cosine_after == 0);
}
