#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/cpu/backend.hpp>
#include <ogpsa/eigen_view.hpp>
#include <ogpsa/rules/conflict_only.hpp>
#include <ogpsa/rules/orthogonal.hpp>
#include <ogpsa/rules/soft.hpp>

#include "support.hpp"

using backend = ogpsa::cpu::backend;
using ogpsa::family;
using ogpsa::cpu::detail::tile_elements;
using ogpsa::cpu::detail::tile_rows;
using ogpsa::detail::target_columns;
namespace t = ogpsa::test;

namespace {

template <class T>
using task = ogpsa::projection_task<backend::matrix<T>, backend::ref<T>>;

/// A model in miniature: blocks of every family and very different sizes, including an empty
/// gradient, a single element, an empty basis, several tiles of rows and several of columns.
template <class T>
struct model {
  std::vector<t::matrix<T>> gradients, bases;
  std::vector<family> families;

  model() {
    add(0, 1, 3, family::flat);                      // empty gradient
    add(1, 1, 1, family::flat);                      // a single element
    add(768, 1, 2, family::flat);                    // a norm's weight
    add(2 * tile_rows + 77, 1, 5, family::flat);     // three tiles of rows
    add(300, 37, 0, family::flat);                   // an empty basis
    add(301, 45, 9, family::left);                   // one tile of columns
    add(2000, 3 * tile_elements / 2000 + 5, 4, family::left);  // four tiles of columns
    add(64, 1, 2, family::flat);
    add(700, 130, 6, family::right);                 // a row-major target (Eigen's GEMM)
  }

  void add(Eigen::Index rows, Eigen::Index cols, Eigen::Index rank, family f) {
    const auto seed = static_cast<std::uint32_t>(gradients.size());
    gradients.push_back(t::random_matrix<T>(rows, cols, 100 + seed));
    const Eigen::Index dimension = f == family::flat ? rows * cols : f == family::left ? rows : cols;
    rank = std::min(rank, dimension);
    bases.push_back(rank > 0 ? t::random_orthonormal<T>(dimension, rank, 200 + seed) : t::matrix<T>(dimension, 0));
    families.push_back(f);
  }

  std::vector<task<T>> tasks() {
    std::vector<task<T>> out;
    for (std::size_t i = 0; i < gradients.size(); ++i)
      out.push_back({&bases[i], target_columns(ogpsa::view(gradients[i]), families[i], "t"), {}});
    return out;
  }
};

/// Whether two stats hold the same bits (what "bit-identical on any thread count" claims).
bool same_stats(const ogpsa::projection_stats& a, const ogpsa::projection_stats& b) {
  const auto numbers = [](const ogpsa::projection_stats& s) {
    return t::matrix<double>{{s.gradient_sq, s.coefficient_sq, s.removed_sq, s.projected_sq,
                              s.remaining_coefficient_sq, s.scale}};
  };
  return t::same_bits(numbers(a), numbers(b)) && a.finite == b.finite && a.changed == b.changed;
}

/// The target-space vectors of a model's block i as columns, widened to double.
template <class T>
t::matrix<double> target_space(const model<T>& m, std::size_t i) {
  const t::matrix<double> g = t::to_double(m.gradients[i]);
  if (m.families[i] == family::flat) return g.reshaped();
  return m.families[i] == family::left ? g : t::matrix<double>(g.transpose());
}

template <class T, class Rule = ogpsa::orthogonal>
std::vector<task<T>> project_all(model<T>& m, int threads, bool diagnostics, const Rule& rule = {}) {
  ogpsa::cpu::execution exec{.threads = threads};
  backend::workspace ws;
  auto tasks = m.tasks();
  backend::project_all(exec, std::span(tasks), rule, ws, diagnostics);
  return tasks;
}

}  // namespace

TEST_CASE_TEMPLATE("one call over many mixed blocks equals one call per block, on any number of threads",
                   T, float, double, ogpsa::bfloat16) {
  model<T> reference;
  auto reference_tasks = reference.tasks();
  for (std::size_t i = 0; i < reference.gradients.size(); ++i) {
    backend::workspace ws;
    ogpsa::cpu::execution one{.threads = 1};
    backend::project(one, *reference_tasks[i].basis, reference_tasks[i].target, ogpsa::orthogonal{}, ws,
                     reference_tasks[i].stats, true);
  }
  for (int threads : {1, 2, 3, 8}) {
    CAPTURE(threads);
    model<T> m;
    const auto tasks = project_all(m, threads, true);
    for (std::size_t i = 0; i < m.gradients.size(); ++i) {
      CAPTURE(i);
      CHECK(t::same_bits(m.gradients[i], reference.gradients[i]));  // the tiles fix every sum's order
      CHECK(same_stats(tasks[i].stats, reference_tasks[i].stats));
      CHECK(tasks[i].stats.finite);
      CHECK(tasks[i].stats.changed == (m.bases[i].cols() > 0 && m.gradients[i].size() > 0));
    }
  }
}

TEST_CASE_TEMPLATE("many blocks are projected correctly, with the statistics of each", T, float, double,
                   ogpsa::bfloat16) {
  const double tolerance = t::tolerance<ogpsa::accumulator_t<T, T>>();
  model<T> m;
  const model<T> before;
  const auto tasks = project_all(m, 2, true, ogpsa::soft{.alpha = 0.75});
  for (std::size_t i = 0; i < m.gradients.size(); ++i) {
    CAPTURE(i);
    const t::matrix<double> x = target_space(before, i), got = target_space(m, i), u = t::to_double(m.bases[i]);
    const auto& s = tasks[i].stats;
    if (x.size() == 0) {
      CHECK(s.gradient_sq == -1);  // nothing to read
      continue;
    }
    if (u.cols() == 0) {  // nothing removed, but the gradient's norm is reported
      CHECK(got == x);
      CHECK_FALSE(s.changed);
      CHECK(s.gradient_sq == doctest::Approx(x.squaredNorm()).epsilon(tolerance));
      CHECK(s.projected_sq == s.gradient_sq);
      CHECK(s.coefficient_sq == 0);
      CHECK(s.remaining_coefficient_sq == 0);
      continue;
    }
    const t::matrix<double> expected = t::reference_projection(u, x, ogpsa::soft{.alpha = 0.75});
    CHECK((got - expected).cwiseAbs().maxCoeff() <= t::projection_tolerance<T, T>() * (1 + x.cwiseAbs().maxCoeff()));
    // Against what was read and written, not against the backend's own sums.
    const t::matrix<double> c = u.transpose() * x;
    CHECK(s.gradient_sq == doctest::Approx(x.squaredNorm()).epsilon(tolerance));
    CHECK(s.coefficient_sq == doctest::Approx(c.squaredNorm()).epsilon(tolerance));
    CHECK(s.removed_sq == doctest::Approx(0.75 * 0.75 * c.squaredNorm()).epsilon(tolerance));
    CHECK(s.projected_sq == doctest::Approx(got.squaredNorm()).epsilon(tolerance));
    CHECK(s.remaining_coefficient_sq == doctest::Approx((u.transpose() * got).squaredNorm()).epsilon(tolerance));
    CHECK(s.scale == 1);
  }
}

TEST_CASE_TEMPLATE("diagnostics measure what the projection writes and change none of it", T, float, double,
                   ogpsa::bfloat16) {
  model<T> plain, measured;
  project_all(plain, 3, false, ogpsa::conflict_only{});
  project_all(measured, 3, true, ogpsa::conflict_only{});
  for (std::size_t i = 0; i < plain.gradients.size(); ++i) {
    CAPTURE(i);
    CHECK(t::same_bits(measured.gradients[i], plain.gradients[i]));
  }
}

TEST_CASE("a NaN in one block leaves that block untouched and projects the others") {
  model<float> m;
  m.gradients[3](tile_rows + 5) = std::numeric_limits<float>::quiet_NaN();
  m.gradients[6](7, 2) = std::numeric_limits<float>::infinity();
  const model<float> before = m;
  const auto tasks = project_all(m, 2, false);
  for (std::size_t i : {std::size_t{3}, std::size_t{6}}) {
    CHECK_FALSE(tasks[i].stats.finite);
    CHECK_FALSE(tasks[i].stats.changed);
    CHECK(t::same_bits(m.gradients[i], before.gradients[i]));  // every element, the NaN's bits included
  }
  CHECK(tasks[5].stats.finite);
  CHECK(tasks[5].stats.changed);
  CHECK(m.gradients[5] != before.gradients[5]);
}

TEST_CASE("columns that a rule leaves alone keep their values in a multi-column block") {
  const t::matrix<double> u = t::random_orthonormal<double>(500, 3, 1);
  t::matrix<double> g = t::random_matrix<double>(500, 40, 2);
  g = g - u * (u.transpose() * g);
  g.leftCols(20) += u * t::matrix<double>::Constant(3, 20, 0.5);    // agree with every direction
  g.rightCols(20) -= u * t::matrix<double>::Constant(3, 20, 0.5);   // conflict with every direction
  const t::matrix<double> before = g;
  std::vector<task<double>> tasks{{&u, target_columns(ogpsa::view(g), family::left, "t"), {}}};
  backend::workspace ws;
  ogpsa::cpu::execution exec;
  backend::project_all(exec, std::span(tasks), ogpsa::conflict_only{}, ws, false);
  CHECK(g.leftCols(20) == before.leftCols(20));
  CHECK((u.transpose() * g.rightCols(20)).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("a basis whose dimension differs from its target is a clear error, before anything is written") {
  model<float> m;
  m.bases[5] = t::random_orthonormal<float>(300, 9, 3);  // the target has 301 rows
  const model<float> before;
  t::check_throws_with<ogpsa::shape_error>([&] { project_all(m, 2, false); },
                                           {"ogpsa::cpu::backend::project_all()", "task 5", "300 rows", "301"});
  for (std::size_t i = 0; i < m.gradients.size(); ++i) CHECK(m.gradients[i] == before.gradients[i]);
}

TEST_CASE("a warm workspace serves calls of different shapes") {
  backend::workspace ws;
  ogpsa::cpu::execution exec;
  for (Eigen::Index d : {Eigen::Index{100000}, Eigen::Index{10}, 3 * tile_rows, Eigen::Index{1}}) {
    CAPTURE(d);
    const t::matrix<float> u = t::random_orthonormal<float>(d, 1, 4);
    t::matrix<float> g = t::random_matrix<float>(d, 1, 5);
    std::vector<task<float>> tasks{{&u, target_columns(ogpsa::view(g), family::flat, "t"), {}}};
    backend::project_all(exec, std::span(tasks), ogpsa::orthogonal{}, ws, false);
    CHECK(std::abs(static_cast<double>(u.col(0).dot(g.col(0)))) < 1e-5 * std::sqrt(static_cast<double>(d)));
  }
}

TEST_CASE("coefficients_all packs every task's coefficients, which update_all consumes") {
  model<double> m;
  auto tasks = m.tasks();
  backend::workspace ws;
  ogpsa::cpu::execution exec;
  backend::coefficients_all(exec, std::span(tasks), ws, true);
  const auto packed = ws.packed_coefficients<double>();
  Eigen::Index offset = 0;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    CAPTURE(i);
    const t::matrix<double> x = target_space(m, i);
    const t::matrix<double> c = m.bases[i].transpose() * x;  // k x n; zeros when the target is empty
    const Eigen::Map<const t::matrix<double>> got(packed.data() + offset, c.rows(), c.cols());
    if (c.size() > 0) CHECK((got - c).cwiseAbs().maxCoeff() <= 1e-12 * (1 + c.cwiseAbs().maxCoeff()));
    offset += c.size();
    CHECK(packed[packed.size() - tasks.size() + i] == doctest::Approx(x.squaredNorm()).epsilon(1e-12));
  }
  CHECK(static_cast<std::size_t>(offset) + tasks.size() == packed.size());
}

TEST_CASE("an all-reduce between the halves projects a block sharded across ranks") {
  // One flat block of 2d elements split in two shards, as ZeRO/FSDP would: each rank computes the
  // partial coefficients of its shard, the sum (the all-reduce) is the full block's, and each
  // rank updates its shard with it.
  const Eigen::Index d = tile_rows + 300, k = 3;
  const t::matrix<double> u = t::random_orthonormal<double>(2 * d, k, 1);
  t::matrix<double> g = t::random_matrix<double>(2 * d, 1, 2);
  const t::matrix<double> expected = t::reference_projection(u, g, ogpsa::orthogonal{});
  std::vector<t::matrix<double>> bases{u.topRows(d), u.bottomRows(d)};
  std::vector<backend::workspace> ws(2);
  std::vector<std::vector<task<double>>> shards(2);
  ogpsa::cpu::execution exec;
  for (int r = 0; r < 2; ++r) {
    shards[r].push_back({&bases[r], target_columns(ogpsa::view(g.data() + r * d, d), family::flat, "t"), {}});
    backend::coefficients_all(exec, std::span(shards[r]), ws[r], false);
  }
  const auto first = ws[0].packed_coefficients<double>(), second = ws[1].packed_coefficients<double>();
  REQUIRE(first.size() == static_cast<std::size_t>(k));
  for (std::size_t j = 0; j < first.size(); ++j) second[j] = first[j] = first[j] + second[j];  // all-reduce
  for (int r = 0; r < 2; ++r) backend::update_all(exec, std::span(shards[r]), ogpsa::orthogonal{}, ws[r], false);
  CHECK((g - expected).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("measures summed across ranks give the whole block's statistics, also where tiles were left alone") {
  // A left block split by rows over two ranks, as FSDP shards a weight: every rank measures its
  // rows, the sums of the measures are the whole block's. Its first tile of columns agrees with
  // every direction, so conflict_only writes nothing there.
  const Eigen::Index m = 2000, n = 3 * tile_elements / 2000 + 5, k = 4, half = m / 2;
  const t::matrix<double> u = t::random_orthonormal<double>(m, k, 1);
  t::matrix<double> g = t::random_matrix<double>(m, n, 2);
  const Eigen::Index agreeing = tile_elements / m;  // the first tile's columns
  g.leftCols(agreeing) = u * t::matrix<double>::Constant(k, agreeing, 1.0) + 0.1 * g.leftCols(agreeing);
  const auto sum_across = [](std::span<double> a, std::span<double> b) {
    REQUIRE(a.size() == b.size());
    for (std::size_t j = 0; j < a.size(); ++j) a[j] = b[j] = a[j] + b[j];
  };
  ogpsa::cpu::execution exec;
  t::matrix<double> whole = g;
  std::vector<task<double>> single{{&u, target_columns(ogpsa::view(whole), family::left, "t"), {}}};
  backend::workspace single_ws;
  backend::project_all(exec, std::span(single), ogpsa::conflict_only{}, single_ws, true);
  std::vector<t::matrix<double>> bases{u.topRows(half), u.bottomRows(half)}, parts{g.topRows(half), g.bottomRows(half)};
  std::vector<backend::workspace> ws(2);
  std::vector<std::vector<task<double>>> shards(2);
  for (std::size_t r = 0; r < 2; ++r) {
    shards[r].push_back({&bases[r], target_columns(ogpsa::view(parts[r]), family::left, "t"), {}});
    backend::coefficients_all(exec, std::span(shards[r]), ws[r], true);
  }
  sum_across(ws[0].packed_coefficients<double>(), ws[1].packed_coefficients<double>());
  for (std::size_t r = 0; r < 2; ++r) backend::update_all(exec, std::span(shards[r]), ogpsa::conflict_only{}, ws[r], true);
  sum_across(ws[0].packed_measurements<double>(), ws[1].packed_measurements<double>());
  const ogpsa::projection_stats& e = single[0].stats;
  REQUIRE(e.changed);
  REQUIRE(whole.leftCols(agreeing) == g.leftCols(agreeing));
  for (std::size_t r = 0; r < 2; ++r) {
    CAPTURE(r);
    backend::measure_all(exec, std::span(shards[r]), ws[r]);
    const ogpsa::projection_stats& s = shards[r][0].stats;
    CHECK((parts[r] - whole.middleRows(static_cast<Eigen::Index>(r) * half, half)).cwiseAbs().maxCoeff() < 1e-12);
    CHECK(s.gradient_sq == doctest::Approx(e.gradient_sq).epsilon(1e-12));
    CHECK(s.removed_sq == doctest::Approx(e.removed_sq).epsilon(1e-12));
    CHECK(s.projected_sq == doctest::Approx(e.projected_sq).epsilon(1e-12));
    CHECK(s.remaining_coefficient_sq == doctest::Approx(e.remaining_coefficient_sq).epsilon(1e-12));
  }
  CHECK(e.projected_sq == doctest::Approx(whole.squaredNorm()).epsilon(1e-12));
  CHECK(e.remaining_coefficient_sq == doctest::Approx((u.transpose() * whole).squaredNorm()).epsilon(1e-12));
}

TEST_CASE("a rule that scales whole gradients is refused on a multi-column target, before anything is written") {
  const t::matrix<float> u = t::random_orthonormal<float>(30, 1, 1);
  t::matrix<float> g = t::random_matrix<float>(30, 4, 2);
  const t::matrix<float> before = g;
  std::vector<task<float>> tasks{{&u, target_columns(ogpsa::view(g), family::left, "t"), {}}};
  backend::workspace ws;
  ogpsa::cpu::execution exec;
  t::check_throws_with<ogpsa::invalid_argument>(
      [&] {
        backend::project_all(exec, std::span(tasks), ogpsa::conflict_only{.behaviour = ogpsa::conflict_only::mode::threshold},
                             ws, false);
      },
      {"ogpsa::cpu::backend::update_all()", "conflict_only", "task 0 has 4 columns"});
  CHECK(t::same_bits(g, before));
}
