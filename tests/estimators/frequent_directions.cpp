#include <cmath>
#include <limits>
#include <type_traits>

#include <Eigen/Eigenvalues>
#include <doctest/doctest.h>

#include <ogpsa/estimator.hpp>
#include <ogpsa/estimators/frequent_directions.hpp>
#include <ogpsa/estimators/incremental_svd.hpp>  // the former name still compiles

#include "estimate.hpp"

using ogpsa::frequent_directions;
using ogpsa::test::estimate;
namespace t = ogpsa::test;

namespace {

ogpsa::cpu::execution exec;

template <class T>
using pass = t::pass_of<frequent_directions, T>;

template <class T>
pass<T> fed(const frequent_directions& params, const t::matrix<T>& data, Eigen::Index per_feed) {
  pass<T> s(params, data.rows(), "w");
  t::feed_columns(s, data, per_feed);
  return s;
}

/// The Davis-Kahan bound the estimator documents: Delta / (s_k^2 - s_{k+1}^2), plus rounding.
template <class T>
double documented_bound(const t::vector<double>& sigma, Eigen::Index k, double shrinkage) {
  return shrinkage / (sigma(k - 1) * sigma(k - 1) - sigma(k) * sigma(k)) + 100 * t::tolerance<T>();
}

}  // namespace

TEST_CASE("frequent_directions is a subspace estimator for every family") {
  static_assert(ogpsa::subspace_estimator<frequent_directions>);
  CHECK(frequent_directions{}.supports(ogpsa::family::right));
  CHECK(frequent_directions{.rank = 4}.width() == 8);
  CHECK(frequent_directions{.rank = 4}.block_columns() == 4);
}

TEST_CASE("the former names incremental_svd and incremental_svd_sketch still name the estimator") {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  static_assert(std::is_same_v<ogpsa::incremental_svd, frequent_directions>);  // former name
  static_assert(std::is_same_v<ogpsa::incremental_svd_sketch<float>,  // former name
                               ogpsa::frequent_directions_sketch<float>>);
#pragma GCC diagnostic pop
}

TEST_CASE_TEMPLATE("principal angles within the Frequent Directions bound", T, float, double) {
  struct scenario {
    Eigen::Index rows, cols, rank, k;
    double noise, decay;
    frequent_directions params;
  };
  for (const scenario& c : {scenario{3000, 60, 6, 6, 1e-2, 0.7, {.rank = 6}},
                            scenario{3000, 60, 6, 6, 1e-2, 0.7, {.rank = 6, .sketch_width = 6, .block = 1}},
                            scenario{400, 500, 200, 8, 0.0, 0.85, {.rank = 8, .sketch_width = 32, .block = 32}}}) {
    const auto data = t::low_rank_plus_noise<T>(c.rows, c.cols, c.rank, c.noise, 41, c.decay);
    const auto sigma = t::singular_values(data);
    pass<T> s = fed(c.params, data, 5);
    pass<T> copy = s;
    const double shrinkage = copy.export_sketch(exec).shrinkage;  // one more step: still a bound
    const auto sub = s.finish(exec);
    REQUIRE(sub.rank() == c.k);
    CHECK(t::orthonormality_error(sub.basis) < 10 * t::tolerance<T>());
    CHECK(t::sine_to_exact(sub, data) < documented_bound<T>(sigma, c.k, shrinkage));
    for (Eigen::Index i = 0; i < c.k; ++i) CHECK(sub.strengths[i] <= sigma(i) * (1 + t::tolerance<T>()));
  }
}

TEST_CASE_TEMPLATE("the sketch keeps the Frequent Directions guarantee", T, float, double) {
  const auto data = t::low_rank_plus_noise<T>(500, 300, 100, 0.0, 42, 0.9);
  const auto sigma = t::singular_values(data);
  const frequent_directions params{.rank = 6, .sketch_width = 12, .block = 7};
  pass<T> s = fed(params, data, 11);
  const auto sketch = s.export_sketch(exec);
  CHECK(sketch.columns.cols() == 12);  // no snapshot kept, whatever the stream's length
  CHECK(sketch.count == 300);
  CHECK(sketch.width == 12);
  CHECK(sketch.energy == doctest::Approx(data.template cast<double>().squaredNorm()).epsilon(10 * t::tolerance<T>()));
  CHECK((sketch.column_sum - data.rowwise().sum()).cwiseAbs().maxCoeff() < 1e3 * t::tolerance<T>());
  // 0 <= A A^T - B B^T <= Delta I.
  const t::matrix<double> a = data.template cast<double>(), b = sketch.columns.template cast<double>();
  const t::matrix<double> gap = a * a.transpose() - b * b.transpose();
  const t::vector<double> eig = Eigen::SelfAdjointEigenSolver<t::matrix<double>>(gap).eigenvalues();
  const double scale = sigma(0) * sigma(0) * 1e3 * t::tolerance<T>();
  CHECK(eig.minCoeff() >= -scale);
  CHECK(eig.maxCoeff() <= sketch.shrinkage + scale);
  // Delta <= |A - A_k'|_F^2 / (l + 1 - k') for every k' <= l.
  for (Eigen::Index k = 0; k <= 12; ++k) {
    CAPTURE(k);
    CHECK(sketch.shrinkage <= sigma.tail(sigma.size() - k).squaredNorm() / static_cast<double>(13 - k) + scale);
  }
}

TEST_CASE("the result depends on where the buffer fills, not on how the stream was fed") {
  const auto data = t::low_rank_plus_noise<float>(1000, 70, 8, 1e-2, 43);
  const frequent_directions params{.rank = 8, .block = 5};
  const auto whole = estimate<float>(params, data, 70);
  for (Eigen::Index per_feed : {1, 3, 9}) CHECK(estimate<float>(params, data, per_feed).basis == whole.basis);
  // Another block size changes the shrink steps, within the guarantee of each.
  const auto other = estimate<float>(frequent_directions{.rank = 8, .block = 2}, data, 70);
  CHECK(t::max_principal_sine(whole.basis.cast<double>(), other.basis.cast<double>()) < 1e-3);
}

TEST_CASE("columns read where they lie and columns copied into the buffer give the same bits") {
  const auto data = t::low_rank_plus_noise<float>(1000, 40, 8, 1e-2, 47);
  // l = 8 and 16 take the thin kernels, l = 24 Eigen's products (with no buffer to finish with).
  for (const frequent_directions& params : {frequent_directions{.rank = 8, .sketch_width = 8, .block = 1},
                                        frequent_directions{.rank = 8, .block = 4},
                                        frequent_directions{.rank = 12, .block = 1}}) {
    const auto in_place = estimate<float>(params, data, 40);  // whole blocks: never copied
    pass<float> copied(params, data.rows(), "w");           // double columns: converted into the buffer
    t::feed_columns(copied, t::matrix<double>(data.cast<double>()), 1);
    CHECK(copied.finish(exec).basis == in_place.basis);
  }
}

TEST_CASE_TEMPLATE("merging two shards' sketches matches feeding both shards", T, float, double) {
  const auto data = t::low_rank_plus_noise<T>(2000, 80, 6, 1e-2, 44);
  const auto sigma = t::singular_values(data);
  const frequent_directions params{.rank = 6, .block = 4};
  const t::matrix<T> first = data.leftCols(50), second = data.rightCols(30);
  pass<T> both = fed(params, first, 5);
  t::feed_columns(both, second, 5);
  pass<T> merged = fed(params, first, 5);
  pass<T> other = fed(params, second, 5);
  const auto sent = other.export_sketch(exec);  // what a worker would communicate
  merged.merge(exec, sent);
  pass<T> copy = merged;
  const double shrinkage = copy.export_sketch(exec).shrinkage;
  const auto a = both.finish(exec), b = merged.finish(exec);
  CHECK(t::max_principal_sine(a.basis.template cast<double>(), b.basis.template cast<double>()) <
        2 * documented_bound<T>(sigma, 6, shrinkage));
  CHECK(t::sine_to_exact(b, data) < documented_bound<T>(sigma, 6, shrinkage));
  const Eigen::VectorXd along = b.basis.template cast<double>().transpose() * data.template cast<double>().rowwise().sum();
  CHECK((along.array() >= 0).all());
}

TEST_CASE("a sketch imported into a fresh pass gives the exporter's subspace") {
  const auto data = t::low_rank_plus_noise<double>(900, 40, 5, 1e-2, 45);
  const frequent_directions params{.rank = 5, .block = 3};
  pass<double> origin = fed(params, data, 4);
  pass<double> imported(params, 900, "w");
  imported.merge(exec, origin.export_sketch(exec));
  CHECK(t::max_principal_sine(origin.finish(exec).basis, imported.finish(exec).basis) < 1e-12);
}

TEST_CASE("a sketch that does not fit is rejected") {
  const frequent_directions params{.rank = 4};
  pass<double> s(params, 100, "w");
  pass<double> longer(params, 120, "w");
  t::feed_columns(longer, t::random_matrix<double>(120, 5, 46), 5);
  t::check_throws_with<ogpsa::shape_error>([&] { s.merge(exec, longer.export_sketch(exec)); },
                                           {"ogpsa::frequent_directions::merge()", "block 'w'", "120 rows",
                                            "dimension is 100"});
  pass<double> wider(frequent_directions{.rank = 4, .sketch_width = 9}, 100, "w");
  t::check_throws_with<ogpsa::invalid_argument>([&] { s.merge(exec, wider.export_sketch(exec)); },
                                                {"sketch width 9 differs from this estimator's 8"});
  auto poisoned = pass<double>(params, 100, "w").export_sketch(exec);
  poisoned.columns(3, 2) = std::numeric_limits<double>::quiet_NaN();
  t::check_throws_with<ogpsa::numeric_error>([&] { s.merge(exec, poisoned); }, {"NaN or Inf"});
}

TEST_CASE("every direction points along the data it came from") {
  const auto data = t::low_rank_plus_noise<double>(400, 20, 5, 1e-2, 47);
  const auto sub = estimate<double>(frequent_directions{.rank = 5, .block = 3}, data, 2);
  CHECK(t::points_along_data(sub, data));
}

TEST_CASE("the energy threshold uses the sketch's lower bound") {
  // Squared singular values 1, 1/4, 1/16, 1/64 (cumulative 0.753, 0.941, 0.988, 1); rank 4 data
  // fits the sketch, so nothing is shrunk and the choice is exact.
  const auto data = t::low_rank_plus_noise<double>(300, 30, 4, 0.0, 48, 0.5);
  CHECK(estimate<double>(frequent_directions{.rank = 6, .energy = 0.70}, data, 30).rank() == 1);
  CHECK(estimate<double>(frequent_directions{.rank = 6, .energy = 0.95}, data, 30).rank() == 3);
  const auto sub = estimate<double>(frequent_directions{.rank = 6, .energy = 1.0}, data, 30);
  CHECK(sub.rank() == 4);
  CHECK(sub.captured_energy == doctest::Approx(1.0));
}

TEST_CASE("degenerate data, a rank beyond the data and bad hyper-parameters") {
  const auto data = t::low_rank_plus_noise<double>(100, 20, 3, 0.0, 49);
  const auto sub = estimate<double>(frequent_directions{.rank = 5, .block = 2}, data, 20);
  CHECK(sub.rank() == 3);
  CHECK(sub.dropped == 2);
  // A rank beyond min(d, m) = 20 keeps all 20 directions of full-rank data and reports one dropped.
  const auto full =
      estimate<double>(frequent_directions{.rank = 21}, t::random_matrix<double>(100, 20, 50), 20);
  CHECK(full.rank() == 20);
  CHECK(full.dropped == 1);
  pass<double> empty(frequent_directions{}, 10, "w");
  t::check_throws_with<ogpsa::state_error>([&] { (void)empty.finish(exec); }, {"no reference snapshot"});
  t::check_throws_with<ogpsa::invalid_argument>([] { frequent_directions{.rank = 0}.validate(); }, {"got 0"});
  t::check_throws_with<ogpsa::invalid_argument>(
      [] { frequent_directions{.rank = 8, .sketch_width = 7}.validate(); },
      {"ogpsa::frequent_directions::validate()", "sketch_width l must be >= rank k = 8, got 7"});
  t::check_throws_with<ogpsa::invalid_argument>([] { frequent_directions{.block = 0}.validate(); },
                                                {"block b must be >= 1, got 0"});
}
