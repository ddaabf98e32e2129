#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/cpu/backend.hpp>
#include <ogpsa/eigen_view.hpp>
#include <ogpsa/rules/conflict_only.hpp>
#include <ogpsa/rules/orthogonal.hpp>
#include <ogpsa/rules/soft.hpp>

#include "policies.hpp"
#include "support.hpp"

using backend = ogpsa::cpu::backend;
using ogpsa::family;
using ogpsa::detail::target_columns;
namespace t = ogpsa::test;

namespace {
ogpsa::cpu::execution exec;

}  // namespace

TEST_CASE_TEMPLATE("gram accumulates in double, panel by panel", T, float, double) {
  const auto a = t::random_matrix<T>(5003, 7, 1);  // not a multiple of the panel height
  const auto b = t::random_matrix<T>(5003, 3, 2);
  const t::matrix<double> exact = a.template cast<double>().transpose() * b.template cast<double>();
  CHECK((backend::gram(exec, a, b) - exact).cwiseAbs().maxCoeff() < 1e-9);
  const t::matrix<double> self = a.template cast<double>().transpose() * a.template cast<double>();
  const auto g = backend::gram(exec, a, a);
  CHECK((g - self).cwiseAbs().maxCoeff() < 1e-9);
  CHECK((g - g.transpose()).cwiseAbs().maxCoeff() == 0.0);
  CHECK((backend::row_gram(exec, b) -
         b.template cast<double>() * b.template cast<double>().transpose())
            .cwiseAbs()
            .maxCoeff() < 1e-9);
}

TEST_CASE_TEMPLATE("stacked primitives see a list of parts as one matrix, in one pass", T, float, double) {
  // Parts of 1, 3 and 2 columns, 5003 rows: a panel boundary falls inside the data.
  std::vector<t::matrix<T>> parts{t::random_matrix<T>(5003, 1, 5), t::random_matrix<T>(5003, 3, 6),
                                  t::random_matrix<T>(5003, 2, 7)};
  t::matrix<T> whole(5003, 6);
  whole << parts[0], parts[1], parts[2];
  const t::matrix<double> wd = whole.template cast<double>();
  const t::matrix<T> b = t::random_matrix<T>(5003, 4, 8);
  CHECK((backend::gram(exec, parts, b) - wd.transpose() * b.template cast<double>()).cwiseAbs().maxCoeff() < 1e-9);
  const auto g = backend::gram(exec, parts);
  CHECK((g - wd.transpose() * wd).cwiseAbs().maxCoeff() < 1e-9);
  CHECK((g - g.transpose()).cwiseAbs().maxCoeff() == 0.0);
  const t::matrix<double> x = t::random_matrix<double>(6, 3, 9);
  const t::matrix<double> ax = wd * x.cast<T>().template cast<double>();
  CHECK((backend::multiply(exec, parts, x).template cast<double>() - ax).cwiseAbs().maxCoeff() <
        100 * t::tolerance<T>());
  CHECK(backend::squared_norm(exec, whole) == doctest::Approx(wd.squaredNorm()).epsilon(1e-12));
}

TEST_CASE_TEMPLATE("multiply_in_place replaces a by a x, or by [a parts...] x", T, float, double) {
  t::matrix<T> a = t::random_matrix<T>(70000, 4, 10);  // several panels
  const t::matrix<T> c = t::random_matrix<T>(70000, 2, 11);
  const t::matrix<double> x = t::random_matrix<double>(4, 4, 12), y = t::random_matrix<double>(6, 4, 13);
  const t::matrix<double> ax = a.template cast<double>() * x.cast<T>().template cast<double>();
  backend::multiply_in_place(exec, a, x);
  CHECK((a.template cast<double>() - ax).cwiseAbs().maxCoeff() < 100 * t::tolerance<T>());
  t::matrix<T> joined(70000, 6);
  joined << a, c;
  const t::matrix<double> expected = joined.template cast<double>() * y.cast<T>().template cast<double>();
  std::vector<t::matrix<T>> parts{a, c};
  backend::multiply_in_place(exec, parts, y);
  CHECK((parts[0].template cast<double>() - expected).cwiseAbs().maxCoeff() < 100 * t::tolerance<T>());
  CHECK(parts[1] == c);
}

TEST_CASE_TEMPLATE("a tail of columns is read where it lies", T, float, double) {
  t::matrix<T> a = t::random_matrix<T>(70000, 4, 14);
  const t::matrix<T> caller = t::random_matrix<T>(70000, 3, 15);  // the tail: its last two columns
  const backend::ref<const T> tail{caller.data() + 70000, 70000, 2, 1, 70000};
  t::matrix<T> joined(70000, 6);
  joined << a, caller.rightCols(2);
  const t::matrix<double> jd = joined.template cast<double>();
  CHECK((backend::gram_with_tail(exec, a, tail) - jd.transpose() * jd.rightCols(2)).cwiseAbs().maxCoeff() <
        1e-9);
  const t::matrix<double> y = t::random_matrix<double>(6, 4, 16);
  backend::multiply_in_place(exec, a, tail, y);
  CHECK((a.template cast<double>() - jd * y.cast<T>().template cast<double>()).cwiseAbs().maxCoeff() <
        100 * t::tolerance<T>());
  const backend::ref<const T> row_major{caller.data(), 2, 70000, 70000, 1};
  const t::matrix<T> short_a = t::random_matrix<T>(2, 4, 17);
  t::check_throws_with<ogpsa::layout_error>(
      [&] { backend::gram_with_tail(exec, short_a, row_major); },
      {"ogpsa::cpu::backend::gram_with_tail()", "column-major", "row stride 70000"});
}

TEST_CASE_TEMPLATE("householder_qr factors parts in place and apply_q applies Q to a few columns", T, float, double) {
  for (auto [rows, widths] : {std::pair<ogpsa::index_t, std::vector<ogpsa::index_t>>{300, {4, 1, 40}}, {9, {3, 17}}}) {
    CAPTURE(rows);
    std::vector<t::matrix<T>> parts;
    for (ogpsa::index_t w : widths) parts.push_back(t::random_matrix<T>(rows, w, static_cast<std::uint32_t>(w)));
    t::matrix<double> a(rows, 0);
    for (const auto& p : parts) {
      a.conservativeResize(rows, a.cols() + p.cols());
      a.rightCols(p.cols()) = p.template cast<double>();
    }
    const auto f = backend::householder_qr(exec, parts);
    const ogpsa::index_t k = std::min(rows, a.cols());
    REQUIRE(f.r.rows() == k);
    REQUIRE(f.r.cols() == a.cols());
    const t::matrix<T> q = backend::apply_q(exec, parts, f, ogpsa::host_matrix::Identity(k, k));
    CHECK(t::orthonormality_error(q) < 10 * t::tolerance<T>());
    CHECK((q.template cast<double>() * f.r - a).cwiseAbs().maxCoeff() < 100 * t::tolerance<T>());
    const ogpsa::host_matrix x = t::random_matrix<double>(k, 2, 9);
    const t::matrix<T> qx = backend::apply_q(exec, parts, f, x);
    CHECK((qx.template cast<double>() - q.template cast<double>() * x).cwiseAbs().maxCoeff() < 100 * t::tolerance<T>());
    t::check_throws_with<ogpsa::shape_error>([&] { (void)backend::apply_q(exec, parts, f, ogpsa::host_matrix(k + 1, 1)); },
                                             {"ogpsa::cpu::backend::apply_q()", "rows"});
  }
}

TEST_CASE_TEMPLATE("householder_basis orthonormalizes in place, and transposed_r is the R of the parts' transpose", T,
                   float, double) {
  const t::matrix<T> a = t::random_matrix<T>(300, 9, 3);
  t::matrix<T> q = a;
  backend::householder_basis(exec, q);
  CHECK(t::orthonormality_error(q) < 10 * t::tolerance<T>());
  const t::matrix<double> qd = q.template cast<double>();
  CHECK((qd * (qd.transpose() * a.template cast<double>()) - a.template cast<double>()).cwiseAbs().maxCoeff() <
        100 * t::tolerance<T>());
  t::matrix<T> wide(3, 9);
  t::check_throws_with<ogpsa::shape_error>([&] { backend::householder_basis(exec, wide); }, {"rows >= cols", "3 x 9"});
  // Wide data in parts wider than one slab of rows: R^T R = A A^T.
  const std::vector<t::matrix<T>> parts{t::random_matrix<T>(20, 7, 4), t::random_matrix<T>(20, 45, 5)};
  t::matrix<double> whole(20, 52);
  whole << parts[0].template cast<double>(), parts[1].template cast<double>();
  const ogpsa::host_matrix r = backend::transposed_r(exec, parts);
  REQUIRE(r.rows() == 20);
  CHECK(r.isUpperTriangular(0.0));
  CHECK((r.transpose() * r - whole * whole.transpose()).cwiseAbs().maxCoeff() < 1e3 * t::tolerance<T>());
  const std::vector<t::matrix<T>> narrow{t::random_matrix<T>(20, 3, 6)};
  CHECK(backend::transposed_r(exec, narrow).rows() == 3);  // fewer columns than rows
}

TEST_CASE_TEMPLATE("gaussian generates the seed's matrix in T, the same bits on any number of threads", T, float,
                   double) {
  const ogpsa::index_t rows = 3 * (ogpsa::index_t{1} << 16) + 5;  // several runs of rows
  ogpsa::cpu::execution serial{.threads = 1}, team{.threads = 3};
  const t::matrix<T> one = backend::gaussian<T>(serial, rows, 3, 11);
  CHECK(t::same_bits(one, backend::gaussian<T>(team, rows, 3, 11)));
  CHECK(one == ogpsa::detail::gaussian_matrix(rows, 3, 11).template cast<T>());
}

TEST_CASE_TEMPLATE("gram_schmidt orthonormalizes and drops dependent columns", T, float, double) {
  t::matrix<T> q = t::random_matrix<T>(200, 4, 4);
  q.col(2) = q.col(0) * T(2) - q.col(1);  // dependent
  const auto norms = backend::gram_schmidt(exec, q, 0.0, 1e-6 * static_cast<double>(q.col(0).norm()));
  REQUIRE(norms.size() == 4);
  CHECK(norms[2] < 0);
  CHECK(q.col(2).isZero(0));
  t::matrix<T> kept(200, 3);
  kept << q.col(0), q.col(1), q.col(3);
  CHECK(t::orthonormality_error(kept) < 10 * t::tolerance<T>());
}

TEST_CASE("gram_schmidt adds eps to every norm, as the published code does") {
  t::matrix<double> q = t::random_matrix<double>(100, 2, 5);
  const double n0 = q.col(0).norm();
  const auto norms = backend::gram_schmidt(exec, q, 1e-8, 1e-6);
  CHECK(norms[0] == doctest::Approx(n0).epsilon(1e-15));
  CHECK(q.col(0).norm() == doctest::Approx(n0 / (n0 + 1e-8)).epsilon(1e-15));
}

namespace {

/// Projects `g` (a view's block of one family) with basis `u` through the backend, and checks the
/// result against the straightforward projection in double of the same (widened) data.
template <class G, class B, class View, class Rule>
void check_against_reference(const t::matrix<B>& u, View g, family f, const Rule& rule) {
  const auto target = target_columns(g, f, "t");
  const auto as_matrix = [&] {
    t::matrix<double> m(target.rows, target.cols);
    for (Eigen::Index j = 0; j < target.cols; ++j)
      for (Eigen::Index i = 0; i < target.rows; ++i)
        m(i, j) = ogpsa::detail::widen<double>(target.data[i * target.row_stride + j * target.col_stride]);
    return m;
  };
  const t::matrix<double> before = as_matrix(), ud = t::to_double(u);
  const t::matrix<double> expected = t::reference_projection(ud, before, rule);
  backend::workspace ws;
  ogpsa::projection_stats stats;
  backend::project(exec, u, target, rule, ws, stats, true);
  const t::matrix<double> magnitude =
      before.cwiseAbs() + ud.cwiseAbs() * (ud.cwiseAbs().transpose() * before.cwiseAbs());
  CHECK(((as_matrix() - expected).cwiseAbs() - t::projection_tolerance<G, B>() * magnitude).maxCoeff() <= 0);
  CHECK(stats.finite);
  CHECK(stats.gradient_sq == doctest::Approx(before.squaredNorm()).epsilon(1e-4));
  CHECK(stats.coefficient_sq == doctest::Approx((ud.transpose() * before).squaredNorm()).epsilon(1e-3));
}

}  // namespace

TEST_CASE_TEMPLATE_DEFINE("project matches the straightforward projection on every family", P, project_types) {
  using G = typename P::first_type;
  using B = typename P::second_type;
  for (Eigen::Index k : {1, 3, 8, 17, 64}) {
    CAPTURE(k);
    {  // flat, across several tiles and a partial chunk
      const Eigen::Index d = 2 * ogpsa::cpu::detail::tile_rows + 2049;
      t::matrix<G> g = t::random_matrix<G>(d, 1, 1);
      check_against_reference<G>(t::random_orthonormal<B>(d, k, 2), ogpsa::view(g), family::flat, ogpsa::orthogonal{});
    }
    {  // left family of a column-major gradient, more rows than a conversion panel
      t::matrix<G> g = t::random_matrix<G>(301, 37, 3);
      check_against_reference<G>(t::random_orthonormal<B>(301, k, 4), ogpsa::view(g), family::left, ogpsa::orthogonal{});
    }
    {  // right family of a row-major gradient (a PyTorch weight)
      Eigen::Matrix<G, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> g = t::random_matrix<G>(29, 270, 5);
      check_against_reference<G>(t::random_orthonormal<B>(270, k, 6), ogpsa::view(g), family::right, ogpsa::orthogonal{});
    }
  }
}
TEST_CASE_TEMPLATE_APPLY(project_types, t::element_pairs);

// Matrix-side targets for the rules that support them and keep the gradient's scale (the backend
// applies a rule that scales to one-column targets only).
TEST_CASE("project applies every rule column by column") {
  t::for_each_type<ogpsa::rules>([]<class Rule>() {
    for (const Rule& rule : t::rule_samples<Rule>()) {
      CAPTURE(std::string(Rule::name));
      for (Eigen::Index k : {1, 5}) {
        if (rule.supports(family::left) && !rule.scales_gradient()) {
          t::matrix<float> g = t::random_matrix<float>(301, 37, 7);
          check_against_reference<float>(t::random_orthonormal<float>(301, k, 8), ogpsa::view(g), family::left,
                                         rule);
        }
        t::matrix<float> flat = t::random_matrix<float>(3000, 1, 9);
        check_against_reference<float>(t::random_orthonormal<float>(3000, k, 10), ogpsa::view(flat),
                                       family::flat, rule);
      }
    }
  });
}

TEST_CASE("project works on row-major targets (right family of a PyTorch weight)") {
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> g =
      t::random_matrix<float>(40, 30, 7);
  const t::matrix<float> before = g;
  const t::matrix<float> v = t::random_orthonormal<float>(30, 5, 8);
  backend::workspace ws;
  ogpsa::projection_stats stats;
  backend::project(exec, v, target_columns(ogpsa::view(g), family::right, "t"), ogpsa::orthogonal{},
                   ws, stats, false);
  const t::matrix<float> expected = before - (before * v) * v.transpose();
  CHECK((t::matrix<float>(g) - expected).cwiseAbs().maxCoeff() < 1e-5f);
}

TEST_CASE("a rule that removes nothing leaves the gradient bit-identical") {
  const t::matrix<double> u = t::random_orthonormal<double>(50, 2, 9);
  t::matrix<double> g = u.col(0) + u.col(1);  // agrees with both directions
  const t::matrix<double> before = g;
  backend::workspace ws;
  ogpsa::projection_stats stats;
  backend::project(exec, u, target_columns(ogpsa::view(g), family::flat, "t"), ogpsa::conflict_only{},
                   ws, stats, false);
  CHECK_FALSE(stats.changed);
  CHECK(g == before);
}

TEST_CASE("non-finite gradients are reported and left untouched") {
  const t::matrix<float> u = t::random_orthonormal<float>(20, 2, 10);
  t::matrix<float> g = t::random_matrix<float>(20, 1, 11);
  g(3) = std::numeric_limits<float>::infinity();
  const t::matrix<float> before = g;
  backend::workspace ws;
  ogpsa::projection_stats stats;
  backend::project(exec, u, target_columns(ogpsa::view(g), family::flat, "t"), ogpsa::orthogonal{},
                   ws, stats, false);
  CHECK_FALSE(stats.finite);
  CHECK(g.cwiseEqual(before).all());
}

TEST_CASE("empty blocks and empty bases are no-ops") {
  t::matrix<float> u(0, 0), g(0, 1);
  backend::workspace ws;
  ogpsa::projection_stats stats;
  backend::project(exec, u, target_columns(ogpsa::view(g), family::flat, "t"), ogpsa::orthogonal{},
                   ws, stats, false);
  CHECK_FALSE(stats.changed);
  t::matrix<float> g2 = t::random_matrix<float>(5, 1, 12);
  const t::matrix<float> before = g2, empty_basis(5, 0);
  backend::project(exec, empty_basis, target_columns(ogpsa::view(g2), family::flat, "t"),
                   ogpsa::orthogonal{}, ws, stats, false);
  CHECK(g2 == before);
}
