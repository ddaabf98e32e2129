#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/cpu/detail/vector_kernels.hpp>

#include "support.hpp"

using ogpsa::index_t;
namespace k = ogpsa::cpu::detail;
namespace t = ogpsa::test;

namespace {

// Sizes around the lane and chunk widths, and k around the column-group width.
const index_t sizes[] = {1, 15, 16, 17, k::chunk_rows - 1, k::chunk_rows + 17, 3 * k::chunk_rows + 5};
const index_t ranks[] = {1, 2, 7, 8, 9, 16, 33, 64};

}  // namespace

TEST_CASE_TEMPLATE_DEFINE("accumulate_dots computes all k dot products and |g|^2 of a row range", P, dots) {
  using G = typename P::first_type;
  using B = typename P::second_type;
  using A = ogpsa::accumulator_t<G, B>;
  for (index_t d : sizes)
    for (index_t rank : ranks) {
      CAPTURE(d);
      CAPTURE(rank);
      const t::matrix<G> g = t::random_matrix<G>(d, 1, 1);
      const t::matrix<B> u = t::random_matrix<B>(d, rank, 2);
      std::vector<double> sums(static_cast<std::size_t>(rank + 1), 0.0);
      k::accumulate_dots<A>(g.data(), u.data(), d, rank, 0, d, sums.data(), true);
      const t::matrix<double> gd = t::to_double(g), ud = t::to_double(u);
      const t::matrix<double> exact = ud.transpose() * gd;
      const t::matrix<double> magnitude = ud.cwiseAbs().transpose() * gd.cwiseAbs();
      for (index_t j = 0; j < rank; ++j)
        CHECK(std::abs(sums[static_cast<std::size_t>(j)] - exact(j)) <= t::tolerance<A>() * magnitude(j));
      CHECK(sums.back() == doctest::Approx(gd.squaredNorm()).epsilon(t::tolerance<A>()));
    }
}
TEST_CASE_TEMPLATE_APPLY(dots, t::element_pairs);

TEST_CASE_TEMPLATE_DEFINE("update_rows writes s g - U r, rounded once to the gradient's type", P, update) {
  using G = typename P::first_type;
  using B = typename P::second_type;
  using A = ogpsa::accumulator_t<G, B>;
  for (index_t d : sizes)
    for (index_t rank : ranks)
      for (A s : {A(1), A(0.5)}) {
        CAPTURE(d);
        CAPTURE(rank);
        t::matrix<G> g = t::random_matrix<G>(d, 1, 3);
        const t::matrix<B> u = t::random_matrix<B>(d, rank, 4);
        const t::matrix<A> r = t::random_matrix<A>(rank, 1, 5);
        const t::matrix<double> gd = t::to_double(g), ud = t::to_double(u), rd = t::to_double(r);
        k::update_rows<A>(g.data(), u.data(), d, rank, r.data(), s, 0, d);
        const t::matrix<double> expected = static_cast<double>(s) * gd - ud * rd;
        const t::matrix<double> magnitude = gd.cwiseAbs() + ud.cwiseAbs() * rd.cwiseAbs();
        const t::matrix<double> error = (t::to_double(g) - expected).cwiseAbs();
        CHECK((error - t::projection_tolerance<G, B>() * magnitude).maxCoeff() <= 0);
      }
}
TEST_CASE_TEMPLATE_APPLY(update, t::element_pairs);

TEST_CASE_TEMPLATE_DEFINE("update_and_measure_rows writes what update_rows writes and measures it", P, measure) {
  using G = typename P::first_type;
  using B = typename P::second_type;
  using A = ogpsa::accumulator_t<G, B>;
  for (index_t d : sizes)
    for (index_t rank : {index_t{1}, index_t{9}, index_t{33}}) {
      CAPTURE(d);
      CAPTURE(rank);
      t::matrix<G> plain = t::random_matrix<G>(d, 1, 3);
      t::matrix<G> measured = plain;
      const t::matrix<B> u = t::random_matrix<B>(d, rank, 4);
      const t::matrix<A> r = t::random_matrix<A>(rank, 1, 5);
      k::update_rows<A>(plain.data(), u.data(), d, rank, r.data(), A(0.5), 0, d);
      std::vector<double> sums(static_cast<std::size_t>(rank + 1), 0.0);
      k::update_and_measure_rows<A>(measured.data(), u.data(), d, rank, r.data(), A(0.5), 0, d, sums.data());
      CHECK(t::same_bits(measured, plain));
      // The measures of the values written, as the dot products of a separate pass would sum them.
      std::vector<double> expected(sums.size(), 0.0);
      k::accumulate_dots<A>(plain.data(), u.data(), d, rank, 0, d, expected.data(), true);
      CHECK(sums == expected);
    }
}
TEST_CASE_TEMPLATE_APPLY(measure, t::element_pairs);

TEST_CASE("row ranges that start at chunk boundaries give bit-identical sums and updates") {
  const index_t d = 5 * k::chunk_rows + 3, rank = 11, split = 2 * k::chunk_rows;
  const t::matrix<float> u = t::random_matrix<float>(d, rank, 6);
  const t::matrix<float> g0 = t::random_matrix<float>(d, 1, 7);
  std::vector<double> whole(rank + 1, 0.0), parts(rank + 1, 0.0);
  k::accumulate_dots<float>(g0.data(), u.data(), d, rank, 0, d, whole.data(), true);
  k::accumulate_dots<float>(g0.data(), u.data(), d, rank, 0, split, parts.data(), true);
  k::accumulate_dots<float>(g0.data(), u.data(), d, rank, split, d, parts.data(), true);
  CHECK(whole == parts);

  const t::matrix<float> r = t::random_matrix<float>(rank, 1, 8);
  t::matrix<float> a = g0, b = g0;
  k::update_rows<float>(a.data(), u.data(), d, rank, r.data(), 1.0f, 0, d);
  k::update_rows<float>(b.data(), u.data(), d, rank, r.data(), 1.0f, split, d);
  k::update_rows<float>(b.data(), u.data(), d, rank, r.data(), 1.0f, 0, split);
  CHECK(a == b);
}

TEST_CASE("an empty row range leaves sums and gradient alone") {
  std::vector<float> g{1, 2, 3}, u{1, 0, 0};
  std::vector<double> sums{0.5, 0.25};
  const float r = 2;
  k::accumulate_dots<float>(g.data(), u.data(), 3, 1, 2, 2, sums.data(), true);
  k::update_rows<float>(g.data(), u.data(), 3, 1, &r, 1.0f, 1, 1);
  CHECK(sums == std::vector<double>{0.5, 0.25});
  CHECK(g == std::vector<float>{1, 2, 3});
}
