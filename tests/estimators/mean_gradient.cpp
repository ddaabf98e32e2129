#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/cpu/backend.hpp>
#include <ogpsa/eigen_view.hpp>
#include <ogpsa/estimator.hpp>
#include <ogpsa/estimators/mean_gradient.hpp>

#include "reference/published.hpp"
#include "support.hpp"

using backend = ogpsa::cpu::backend;
namespace t = ogpsa::test;

namespace {

template <class T>
using pass = ogpsa::mean_gradient::pass<backend, T>;

template <class T>
void feed(pass<T>& s, const t::matrix<T>& g, ogpsa::index_t set) {
  ogpsa::cpu::execution exec;
  s.feed(exec, ogpsa::detail::target_columns(ogpsa::view(g), ogpsa::family::flat, "t"), set);
}

template <class T>
published::vec to_vec(const t::matrix<T>& m) {
  published::vec v(static_cast<std::size_t>(m.size()));
  for (Eigen::Index i = 0; i < m.size(); ++i) v[static_cast<std::size_t>(i)] = static_cast<double>(m(i));
  return v;
}

}  // namespace

TEST_CASE("mean_gradient is a subspace estimator for flat blocks only") {
  static_assert(ogpsa::subspace_estimator<ogpsa::mean_gradient>);
  CHECK(ogpsa::mean_gradient{}.supports(ogpsa::family::flat));
  CHECK_FALSE(ogpsa::mean_gradient{}.supports(ogpsa::family::left));
  CHECK_THROWS_AS(ogpsa::mean_gradient{.norm_epsilon = -1}.validate(), ogpsa::invalid_argument);
}

TEST_CASE_TEMPLATE("one set gives the published normalized mean direction", T, float, double) {
  pass<T> s(ogpsa::mean_gradient{}, 500, "w");
  std::vector<published::vec> batches;
  for (std::uint32_t b = 0; b < 3; ++b) {
    const auto g = t::random_matrix<T>(500, 1, 100 + b);
    feed(s, g, 0);
    batches.push_back(to_vec(g));
  }
  ogpsa::cpu::execution exec;
  const auto sub = s.finish(exec);
  REQUIRE(sub.rank() == 1);
  const published::vec b = *published::direction(batches);
  // u u^T must equal b b^T / (b^T b + 1e-8), so u = b / sqrt(b^T b + 1e-8).
  const double scale = 1.0 / std::sqrt(published::dot(b, b) + 1e-8);
  for (std::size_t i = 0; i < b.size(); ++i)
    CHECK(static_cast<double>(sub.basis(static_cast<Eigen::Index>(i), 0)) ==
          doctest::Approx(b[i] * scale).epsilon(t::tolerance<T>()).scale(1e-3));
  CHECK(sub.dropped == 0);
  CHECK(sub.captured_energy == doctest::Approx(1.0));
}

TEST_CASE_TEMPLATE("two sets are orthonormalized in order", T, float, double) {
  // Without the published epsilons the basis is orthonormal to rounding; with them each norm is
  // short by about 1e-8 / |w| (see the next test).
  pass<T> s(ogpsa::mean_gradient{.norm_epsilon = 0, .orthogonalization_epsilon = 0}, 300, "w");
  const auto g0 = t::random_matrix<T>(300, 1, 1), g1 = t::random_matrix<T>(300, 1, 2);
  feed(s, g0, 0);
  feed(s, g1, 1);
  ogpsa::cpu::execution exec;
  const auto sub = s.finish(exec);
  REQUIRE(sub.rank() == 2);
  CHECK(t::orthonormality_error(sub.basis) < 10 * t::tolerance<T>());
  // The first direction is the first set's mean, unchanged in direction.
  const double cosine = static_cast<double>(sub.basis.col(0).dot(g0.col(0))) / static_cast<double>(g0.norm());
  CHECK(cosine == doctest::Approx(1.0).epsilon(t::tolerance<T>()));
  CHECK(sub.strengths.size() == 2);
}

TEST_CASE("with the published epsilons the directions are unit to within 1e-8 / |w|") {
  pass<double> s(ogpsa::mean_gradient{}, 300, "w");
  feed<double>(s, t::random_matrix<double>(300, 1, 1), 0);
  feed<double>(s, t::random_matrix<double>(300, 1, 2), 1);
  ogpsa::cpu::execution exec;
  const auto sub = s.finish(exec);
  REQUIRE(sub.rank() == 2);
  CHECK(std::abs(sub.basis.col(0).dot(sub.basis.col(1))) < 1e-15);
  for (Eigen::Index j = 0; j < 2; ++j) CHECK(std::abs(sub.basis.col(j).norm() - 1.0) < 2e-8);
}

TEST_CASE_TEMPLATE("a set parallel to an earlier one is dropped as degenerate", T, float, double) {
  pass<T> s(ogpsa::mean_gradient{}, 200, "w");
  const auto g = t::random_matrix<T>(200, 1, 3);
  feed(s, g, 0);
  feed(s, t::matrix<T>(g * T(3)), 1);
  ogpsa::cpu::execution exec;
  const auto sub = s.finish(exec);
  CHECK(sub.rank() == 1);
  CHECK(sub.dropped == 1);
}

TEST_CASE_TEMPLATE("a set whose mean is (near) zero contributes no direction", T, float, double) {
  pass<T> s(ogpsa::mean_gradient{}, 50, "w");
  const auto g = t::random_matrix<T>(50, 1, 4);
  feed(s, g, 0);
  feed(s, t::matrix<T>(-g), 0);  // mean exactly zero
  ogpsa::cpu::execution exec;
  const auto sub = s.finish(exec);
  CHECK(sub.rank() == 0);
  CHECK(sub.dropped == 1);
  CHECK(sub.captured_energy == 0.0);
}

TEST_CASE("a skipped set number is an error naming the block and the set") {
  pass<float> s(ogpsa::mean_gradient{}, 10, "layer.0");
  feed(s, t::random_matrix<float>(10, 1, 5), 1);
  ogpsa::cpu::execution exec;
  t::check_throws_with<ogpsa::invalid_argument>([&] { (void)s.finish(exec); },
                                                {"ogpsa::mean_gradient::finish()", "'layer.0'", "set 0"});
}

TEST_CASE_TEMPLATE("without a first-set direction the subspace is empty unless first_set_required is off", T,
                   float, double) {
  const auto g = t::random_matrix<T>(60, 1, 6), second = t::random_matrix<T>(60, 1, 7);
  auto estimate = [&](ogpsa::mean_gradient params) {
    pass<T> s(params, 60, "w");
    feed(s, g, 0);
    feed(s, t::matrix<T>(-g), 0);  // set 0's mean is exactly zero
    feed(s, second, 1);
    ogpsa::cpu::execution exec;
    return s.finish(exec);
  };
  const auto required = estimate({});
  CHECK(required.rank() == 0);
  CHECK(required.dimension() == 60);
  CHECK(required.dropped == 2);
  CHECK(required.captured_energy == 0.0);
  const auto kept = estimate({.first_set_required = false});
  REQUIRE(kept.rank() == 1);
  CHECK(kept.dropped == 1);
  const double cosine = static_cast<double>(kept.basis.col(0).normalized().dot(second.col(0))) /
                        static_cast<double>(second.norm());
  CHECK(cosine == doctest::Approx(1.0).epsilon(t::tolerance<T>()));
}
