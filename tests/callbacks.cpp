#include <limits>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/ogpsa.hpp>

#include "support.hpp"

namespace t = ogpsa::test;

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

  const t::matrix<double> before = g;
  const t::matrix<double> u = p.subspace_of(id)->basis;
  p.project(rec, counter);
  REQUIRE(rec.projections.size() == 1);
  const auto& info = rec.projections[0];
  CHECK(info.block == "w");
  CHECK(info.rank == 2);
  CHECK(info.gradient_norm == doctest::Approx(before.norm()));
  CHECK(info.projected_norm == doctest::Approx(g.norm()));
  CHECK(info.removed_fraction == doctest::Approx((before - g).norm() / before.norm()));
  CHECK(info.cosine_before == doctest::Approx((u.transpose() * before).norm() / before.norm()));
  CHECK(info.cosine_after == doctest::Approx(0.0).epsilon(1e-9));
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
  recorder rec;
  p.project(rec);
  CHECK(rec.non_finite == std::vector<std::string>{"w"});
  CHECK(rec.projections.empty());
  CHECK(g[0] == 1.0f);
}
