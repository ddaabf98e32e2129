// Memory order: a block's views may be row-major or column-major; what is fed, rebound or
// projected must mean the same elements as the registered view.

#include <tuple>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/ogpsa.hpp>

#include "support.hpp"

using ogpsa::family;
namespace t = ogpsa::test;

namespace {

using row_major = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using column_major = t::matrix<double>;
using svd_projector =
    ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<double>>;

constexpr Eigen::Index rows = 40, cols = 30;

/// Three 40 x 30 references of rank 2 on each side (columns in span(L), rows in span(R)), so
/// that a combination of them lies in the subspace of every family: flat (rank 3), left and
/// right (rank 2).
std::vector<column_major> references() {
  const column_major left = t::random_orthonormal<double>(rows, 2, 1),
                     right = t::random_orthonormal<double>(cols, 2, 2);
  std::vector<column_major> out;
  for (std::uint32_t s = 0; s < 3; ++s)
    out.push_back(left * t::random_matrix<double>(2, 2, 3 + s) * right.transpose());
  return out;
}

ogpsa::index_t rank_of(family f) {
  return f == family::flat ? 3 : 2;
}

/// A gradient in the subspace of every family.
column_major in_subspace() {
  const auto r = references();
  return r[0] + 2 * r[1] - r[2];
}

/// A projector for `block` (registered as family f), estimated from `references()` in the order
/// of `Reference`.
template <class Reference, class Block>
svd_projector estimated(Block& block, family f) {
  svd_projector p(ogpsa::exact_svd{.rank = rank_of(f)});
  const auto id = p.add_block("w", ogpsa::view(block), f);
  p.begin_reference_pass();
  for (const column_major& r : references()) {
    const Reference laid_out = r;
    p.feed(id, ogpsa::view(laid_out));
  }
  p.finish_reference_pass();
  return p;
}

template <class A, class B>
constexpr bool same_order = bool(A::IsRowMajor) == bool(B::IsRowMajor);

std::string order_name(bool is_row_major) {
  return is_row_major ? "row-major" : "column-major";
}

}  // namespace

// (block's order, other view's order)
#define ORDER_PAIRS                                                                                        \
  std::pair<row_major, row_major>, std::pair<row_major, column_major>, std::pair<column_major, row_major>, \
      std::pair<column_major, column_major>

TEST_CASE_TEMPLATE("references in either memory order give the block's subspace in every family", P,
                   ORDER_PAIRS) {
  using block_order = typename P::first_type;
  using reference_order = typename P::second_type;
  for (family f : {family::flat, family::left, family::right}) {
    CAPTURE(f);
    block_order g = in_subspace();
    const double before = g.norm();
    svd_projector p = estimated<reference_order>(g, f);
    block_order same = in_subspace();
    const svd_projector q = estimated<block_order>(same, f);
    // The same elements in any order: the same basis, bit for bit.
    CHECK(t::same_bits(p.subspace_of(ogpsa::block_id{0})->basis, q.subspace_of(ogpsa::block_id{0})->basis));
    p.project();
    CHECK(g.norm() < 1e-12 * before);
  }
}

TEST_CASE_TEMPLATE("rebind and project(id, view) take another memory order on matrix-side blocks only", P,
                   ORDER_PAIRS) {
  using block_order = typename P::first_type;
  using other_order = typename P::second_type;
  const column_major noise = t::random_matrix<double>(rows, cols, 9);
  for (family f : {family::flat, family::left, family::right}) {
    CAPTURE(f);
    block_order registered = noise;
    svd_projector p = estimated<block_order>(registered, f);
    const auto id = ogpsa::block_id{0};
    // The expected projection, computed in the block's own order.
    block_order expected = noise;
    p.project(id, ogpsa::view(expected));

    other_order other = noise;
    if (f == family::flat && !same_order<block_order, other_order>) {
      const std::string block_is = "is " + order_name(block_order::IsRowMajor);
      const std::string view_is = order_name(other_order::IsRowMajor);
      t::check_throws_with<ogpsa::layout_error>(
          [&] { p.rebind(id, ogpsa::view(other)); },
          {"ogpsa::projector::rebind()", "'w'", block_is, view_is, "in place"});
      t::check_throws_with<ogpsa::layout_error>(
          [&] { p.project(id, ogpsa::view(other)); },
          {"ogpsa::projector::project()", "'w'", block_is, view_is, "in place"});
      CHECK(column_major(other) == noise);  // nothing written
      p.project();                          // the registration still points at the first buffer
      CHECK(column_major(registered) == column_major(expected));
      continue;
    }
    p.project(id, ogpsa::view(other));
    CHECK((column_major(other) - column_major(expected)).cwiseAbs().maxCoeff() < 1e-13);
    other = noise;
    p.rebind(id, ogpsa::view(other));
    p.project();
    CHECK((column_major(other) - column_major(expected)).cwiseAbs().maxCoeff() < 1e-13);
    CHECK(column_major(registered) == noise);  // the first buffer is no longer the block's
  }
}

TEST_CASE("a flat reference of rank 3 or more must be in the block's memory order") {
  std::vector<float> g(24), r(24, 1.0f);
  ogpsa::published_projector p;
  const auto id = p.add_block("w", ogpsa::view(g.data(), 2, 3, 4));  // row-major
  p.begin_reference_pass();
  const ogpsa::strided_view<const float, 3> reversed(r.data(), {2, 3, 4}, {1, 2, 6});  // column-major
  t::check_throws_with<ogpsa::layout_error>(
      [&] { p.feed(id, reversed); }, {"ogpsa::projector::feed()", "'w'", "row-major (strides [12, 4, 1])",
                                      "column-major (strides [1, 2, 6])"});
  const ogpsa::strided_view<const float, 3> mixed(r.data(), {2, 3, 4}, {3, 1, 6});
  t::check_throws_with<ogpsa::layout_error>([&] { p.feed(id, mixed); }, {"strides [3, 1, 6]"});
  p.feed(id, ogpsa::view(std::as_const(r).data(), 2, 3, 4));
  p.finish_reference_pass();
  CHECK(p.subspace_of(id)->rank() == 1);
}

TEST_CASE("dimensions of extent 1 do not make a memory order differ") {
  std::vector<double> g(30), r(30);
  for (std::size_t i = 0; i < r.size(); ++i) r[i] = static_cast<double>(i % 7) - 3;
  svd_projector p(ogpsa::exact_svd{.rank = 1});
  const auto id = p.add_block("w", ogpsa::view(g.data(), 1, 30));
  p.begin_reference_pass();
  p.feed(id, ogpsa::matrix_view<const double>(r.data(), {1, 30}, {1, 1}));  // column-major strides
  p.finish_reference_pass();
  g = r;
  p.project(id, ogpsa::matrix_view<double>(g.data(), {1, 30}, {1, 1}));
  for (double x : g) CHECK(std::abs(x) < 1e-12);
}
