// A reference pass commits all of its estimates or none: non-finite estimates, throwing callbacks.

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/ogpsa.hpp>

#include "policies.hpp"
#include "support.hpp"

using ogpsa::family;
namespace t = ogpsa::test;

namespace {

template <class Estimator>
using double_projector =
    ogpsa::projector<Estimator, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<double>>;

/// What a block's subspace was, bit for bit.
struct saved_subspace {
  t::matrix<double> basis;
  std::vector<double> strengths;
  double captured_energy;
  ogpsa::index_t dropped;
};

template <class P>
saved_subspace saved(const P& p, ogpsa::block_id id) {
  const auto* s = p.subspace_of(id);
  REQUIRE(s != nullptr);
  return {s->basis, s->strengths, s->captured_energy, s->dropped};
}

template <class P>
void check_unchanged(const P& p, ogpsa::block_id id, const saved_subspace& before) {
  const saved_subspace now = saved(p, id);
  CHECK(t::same_bits(now.basis, before.basis));
  CHECK(now.strengths == before.strengths);
  CHECK(std::memcmp(&now.captured_energy, &before.captured_energy, sizeof(double)) == 0);
  CHECK(now.dropped == before.dropped);
}

/// Three reference gradients of a 10 x 5 block, scaled by `magnitude`.
std::vector<t::matrix<double>> references(std::uint32_t seed, double magnitude = 1.0) {
  std::vector<t::matrix<double>> out;
  for (std::uint32_t s = 0; s < 3; ++s) out.push_back(magnitude * t::random_matrix<double>(10, 5, seed + s));
  return out;
}

/// Feeds every block its references and finishes the pass.
template <class P>
void refresh(P& p, const std::vector<std::vector<t::matrix<double>>>& per_block) {
  p.begin_reference_pass();
  for (std::size_t b = 0; b < per_block.size(); ++b)
    for (const auto& r : per_block[b]) p.feed(ogpsa::block_id{b}, ogpsa::view(r));
  p.finish_reference_pass();
}

}  // namespace

// Data of magnitude 1e160 is finite, but its squares overflow double: every estimator's Gram
// matrices or norms hold Inf, and what comes out of them is not a basis of the data.
TEST_CASE_TEMPLATE_DEFINE("a non-finite estimate rejects the whole pass and every block keeps its basis", E,
                          non_finite_estimate) {
  for (family f : t::families_of<E>()) {
    CAPTURE(f);
    t::matrix<double> ga = t::matrix<double>::Zero(10, 5), gb = ga;
    double_projector<E> p(t::with_rank<E>(2));
    const auto a = p.add_block("a", ogpsa::view(ga), f), b = p.add_block("b", ogpsa::view(gb), f);
    refresh(p, {references(1), references(10)});
    p.project();
    const saved_subspace before_a = saved(p, a), before_b = saved(p, b);

    // Block a's new data is ordinary (it would change its basis); block b's overflows. Streaming
    // estimators see it while fed, the others when the pass finishes.
    const auto overflowing_pass = [&] {
      p.begin_reference_pass();
      for (const auto& r : references(20)) p.feed(a, ogpsa::view(r));
      for (const auto& r : references(30, 1e160)) p.feed(b, ogpsa::view(r));
      p.finish_reference_pass();
    };
    t::check_throws_with<ogpsa::numeric_error>(
        overflowing_pass,
        {"ogpsa::projector::", "block 'b'", "not finite", "rejected and every block keeps its basis"});
    CHECK_FALSE(p.reference_pass_active());
    check_unchanged(p, a, before_a);
    check_unchanged(p, b, before_b);
    CHECK(p.refreshes() == 1);
    CHECK(p.steps_since_refresh() == 1);
  }
}
TEST_CASE_TEMPLATE_APPLY(non_finite_estimate, ogpsa::estimators);

TEST_CASE("restore refuses a state whose subspace is not finite, and changes nothing") {
  t::matrix<double> g = t::matrix<double>::Zero(10, 5);
  double_projector<ogpsa::exact_svd> p(ogpsa::exact_svd{.rank = 2});
  const auto id = p.add_block("w", ogpsa::view(g));
  refresh(p, {references(1)});
  p.project();
  const saved_subspace before = saved(p, id);
  const auto good = p.state();
  for (int field = 0; field < 3; ++field) {
    CAPTURE(field);
    for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
      auto poisoned = good;
      poisoned.steps = 77;
      if (field == 0) poisoned.blocks[0].basis(3, 1) = bad;
      if (field == 1) poisoned.blocks[0].strengths[1] = bad;
      if (field == 2) poisoned.blocks[0].captured_energy = bad;
      t::check_throws_with<ogpsa::numeric_error>([&] { p.restore(poisoned); },
                                                 {"ogpsa::projector::restore()", "'w'", "not finite"});
      check_unchanged(p, id, before);
      CHECK(p.steps() == 1);
    }
  }
}

namespace {

struct callback_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Throws from the hook named at construction; records what the projector looked like then.
struct throwing_callback {
  enum class hook { degenerate, refresh, projection } when;
  std::size_t refreshes_seen = 0;
  void on_degenerate(const ogpsa::degenerate_info&) {
    if (when == hook::degenerate) throw callback_failure("on_degenerate");
  }
  void on_refresh(const ogpsa::refresh_info& i) {
    refreshes_seen = i.refreshes;
    if (when == hook::refresh) throw callback_failure("on_refresh");
  }
  void on_projection(const ogpsa::projection_info&) {
    if (when == hook::projection) throw callback_failure("on_projection");
  }
};

/// Three references of which two are parallel: a rank-3 estimate keeps 2 directions and drops 1.
std::vector<t::matrix<double>> degenerate_references(std::uint32_t seed) {
  auto r = references(seed);
  r[2] = 2 * r[1];
  return r;
}

}  // namespace

TEST_CASE("a callback that throws during a refresh undoes all of it") {
  for (auto when : {throwing_callback::hook::degenerate, throwing_callback::hook::refresh}) {
    CAPTURE(static_cast<int>(when));
    t::matrix<double> ga = t::matrix<double>::Zero(10, 5), gb = ga;
    double_projector<ogpsa::exact_svd> p(ogpsa::exact_svd{.rank = 3});
    const auto a = p.add_block("a", ogpsa::view(ga)), b = p.add_block("b", ogpsa::view(gb));
    refresh(p, {references(1), references(10)});
    p.project();
    const saved_subspace before_a = saved(p, a), before_b = saved(p, b);

    // Block a drops a direction (on_degenerate is called for it first), block b does not.
    p.begin_reference_pass();
    for (const auto& r : degenerate_references(20)) p.feed(a, ogpsa::view(r));
    for (const auto& r : references(30)) p.feed(b, ogpsa::view(r));
    throwing_callback callback{when};
    CHECK_THROWS_AS(p.finish_reference_pass(callback), callback_failure);
    CHECK_FALSE(p.reference_pass_active());
    check_unchanged(p, a, before_a);
    check_unchanged(p, b, before_b);
    CHECK(p.refreshes() == 1);
    CHECK(p.steps_since_refresh() == 1);
    if (when == throwing_callback::hook::refresh) CHECK(callback.refreshes_seen == 2);  // it saw the commit

    // The next pass commits normally.
    refresh(p, {degenerate_references(20), references(30)});
    CHECK(p.refreshes() == 2);
    CHECK(p.subspace_of(a)->rank() == 2);
  }
}

TEST_CASE("a throwing on_projection leaves the projection and the step count done") {
  t::matrix<double> g = t::random_matrix<double>(10, 5, 40);
  double_projector<ogpsa::exact_svd> p(ogpsa::exact_svd{.rank = 2});
  const auto id = p.add_block("w", ogpsa::view(g), family::left);
  refresh(p, {references(1)});
  t::matrix<double> expected = g;
  p.project(id, ogpsa::view(expected));
  REQUIRE(expected != g);
  throwing_callback callback{throwing_callback::hook::projection};

  const t::matrix<double> start = g;
  CHECK_THROWS_AS(p.project(callback), callback_failure);
  CHECK(g == expected);
  CHECK(p.steps() == 1);
  CHECK(p.steps_since_refresh() == 1);

  g = start;
  const std::vector<ogpsa::block_id> ids{id};
  CHECK_THROWS_AS(p.project_blocks(ids, callback), callback_failure);
  CHECK(g == expected);
  t::matrix<double> other = start;
  CHECK_THROWS_AS(p.project(id, ogpsa::view(other), callback), callback_failure);
  CHECK(other == expected);
  CHECK(p.steps() == 1);  // these two never count a step
}
