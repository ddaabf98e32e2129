// The projector's interface as a user meets it: views of their own types, callbacks as
// temporaries, reference passes as scopes.

#include <limits>
#include <stdexcept>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/ogpsa.hpp>

#include "support.hpp"

using ogpsa::family;
namespace t = ogpsa::test;

namespace {

/// A third-party matrix view with exactly what the concept asks for: no size(), no
/// is_exhaustive(), its own index type.
template <class T>
struct foreign_view {
  using element_type = T;
  using index_type = long;
  using memory_space = ogpsa::host_memory_tag;
  T* pointer;
  long extents[2];
  long strides[2];
  static constexpr std::size_t rank() { return 2; }
  long extent(std::size_t r) const { return extents[r]; }
  long stride(std::size_t r) const { return strides[r]; }
  T* data_handle() const { return pointer; }
};

template <class T>
foreign_view<T> foreign(Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, Eigen::Dynamic>& m) {
  return {m.data(), {m.rows(), m.cols()}, {1, m.rows()}};
}
template <class T>
foreign_view<const T> foreign(const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>& m) {
  return {m.data(), {m.rows(), m.cols()}, {1, m.rows()}};
}

using svd_projector =
    ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<double>>;

struct counter {
  int* calls;
  void on_refresh(const ogpsa::refresh_info&) { ++*calls; }
  void on_projection(const ogpsa::projection_info&) { ++*calls; }
};

}  // namespace

TEST_CASE("a third-party view that only models the concept works everywhere a view is taken") {
  static_assert(ogpsa::tensor_view<foreign_view<float>>);
  const std::vector<t::matrix<double>> refs{t::random_matrix<double>(12, 7, 1),
                                            t::random_matrix<double>(12, 7, 2),
                                            t::random_matrix<double>(12, 7, 3)};
  const t::matrix<double> g0 = t::random_matrix<double>(12, 7, 4);
  for (family f : {family::flat, family::left, family::right}) {
    CAPTURE(f);
    // The same run with ogpsa's own views and with the foreign ones: the same bits.
    t::matrix<double> mine = g0, theirs = g0;
    svd_projector a(ogpsa::exact_svd{.rank = 2}), b(ogpsa::exact_svd{.rank = 2});
    const auto ia = a.add_block("w", ogpsa::view(mine), f);
    const auto ib = b.add_block("w", foreign<double>(theirs), f);
    a.begin_reference_pass();
    b.begin_reference_pass();
    for (const auto& r : refs) {
      a.feed(ia, ogpsa::view(r));
      b.feed(ib, foreign(r));
    }
    a.finish_reference_pass();
    b.finish_reference_pass();
    a.project();
    b.project();
    CHECK(t::same_bits(mine, theirs));
    CHECK(mine != g0);

    t::matrix<double> once_mine = g0, once_theirs = g0;
    a.project(ia, ogpsa::view(once_mine));
    b.project(ib, foreign<double>(once_theirs));
    CHECK(t::same_bits(once_mine, once_theirs));
    t::matrix<double> rebound = g0;
    b.rebind(ib, foreign<double>(rebound));
    b.project();
    CHECK(t::same_bits(rebound, once_mine));
  }
}

TEST_CASE("callbacks may be temporaries") {
  std::vector<double> g(30, 1.0), r(30);
  for (std::size_t i = 0; i < r.size(); ++i) r[i] = static_cast<double>(i % 5);
  svd_projector p(ogpsa::exact_svd{.rank = 1});
  const auto id = p.add_block("w", ogpsa::view(g));
  int calls = 0;
  p.begin_reference_pass();
  p.feed(id, ogpsa::view(std::as_const(r)));
  p.finish_reference_pass(counter{&calls});
  CHECK(calls == 1);
  p.project(counter{&calls});
  CHECK(calls == 2);
  const std::vector<ogpsa::block_id> ids{id};
  p.project_blocks(ids, counter{&calls});
  CHECK(calls == 3);
  std::vector<double> other(30, 2.0);
  p.project(id, ogpsa::view(other), counter{&calls}, counter{&calls});
  CHECK(calls == 5);
  auto pass = p.reference_pass();
  pass.feed(id, ogpsa::view(std::as_const(r)));
  pass.finish(counter{&calls});
  CHECK(calls == 6);
}

TEST_CASE("a reference pass scope commits on finish and abandons its pass otherwise") {
  std::vector<double> g(30), r1(30), r2(30);
  for (std::size_t i = 0; i < g.size(); ++i) {
    r1[i] = static_cast<double>(i % 5);
    r2[i] = static_cast<double>(i % 3) - 1;
  }
  svd_projector p(ogpsa::exact_svd{.rank = 1});
  const auto id = p.add_block("w", ogpsa::view(g));
  {
    auto pass = p.reference_pass();
    CHECK(p.reference_pass_active());
    pass.feed(id, ogpsa::view(std::as_const(r1)));
    pass.finish();
    CHECK_FALSE(p.reference_pass_active());
    t::check_throws_with<ogpsa::state_error>([&] { pass.feed(id, ogpsa::view(std::as_const(r2))); },
                                             {"reference_pass_scope::feed()", "has ended"});
  }
  REQUIRE(p.refreshes() == 1);
  const t::matrix<double> before = p.subspace_of(id)->basis;

  SUBCASE("an exception between begin and finish leaves no pass open and the old basis") {
    try {
      auto pass = p.reference_pass();
      pass.feed(id, ogpsa::view(std::as_const(r2)));
      throw std::runtime_error("the reference batch loader failed");
    } catch (const std::runtime_error&) {
    }
    CHECK_FALSE(p.reference_pass_active());
    CHECK(t::same_bits(p.subspace_of(id)->basis, before));
    CHECK(p.refreshes() == 1);
    p.begin_reference_pass();  // a new pass can begin
    p.abandon_reference_pass();
  }
  SUBCASE("a scope whose pass was rejected leaves a later pass alone") {
    std::vector<double> poisoned = r2;
    poisoned[3] = std::numeric_limits<double>::quiet_NaN();
    {
      auto pass = p.reference_pass();
      CHECK_THROWS_AS(pass.feed(id, ogpsa::view(std::as_const(poisoned))), ogpsa::numeric_error);
      p.begin_reference_pass();  // begun directly, while the rejected scope is still alive
      t::check_throws_with<ogpsa::state_error>([&] { pass.finish(); }, {"has ended"});
    }
    CHECK(p.reference_pass_active());
    p.feed(id, ogpsa::view(std::as_const(r2)));
    p.finish_reference_pass();
    CHECK(p.refreshes() == 2);
  }
  SUBCASE("a scope cannot begin inside an active pass") {
    p.begin_reference_pass();
    CHECK_THROWS_AS((void)p.reference_pass(), ogpsa::state_error);
    CHECK(p.reference_pass_active());
  }
  SUBCASE("a moved scope owns the pass") {
    auto first = p.reference_pass();
    {
      auto second = std::move(first);
      second.feed(id, ogpsa::view(std::as_const(r2)));
    }
    CHECK_FALSE(p.reference_pass_active());
  }
}

TEST_CASE("a block's family is family_of(id), and the former name kind(id) still compiles") {
  std::vector<double> g(12);
  svd_projector p(ogpsa::exact_svd{.rank = 1});
  const auto flat = p.add_block("flat", ogpsa::view(g));
  const auto left = p.add_block("left", ogpsa::view(g.data(), 3, 4), family::left);
  CHECK(p.family_of(flat) == family::flat);
  CHECK(p.family_of(left) == family::left);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  CHECK(p.kind(left) == family::left);  // former name
#pragma GCC diagnostic pop
}

TEST_CASE("sharding_of(id) reads the sharding, and the former names layout(id) and shard_layout compile") {
  std::vector<double> g(12);
  svd_projector p(ogpsa::exact_svd{.rank = 1});
  const auto id = p.add_block("w", ogpsa::view(g));
  CHECK(p.sharding_of(id) == ogpsa::sharding::replicated);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  CHECK(p.layout(id) == ogpsa::sharding::replicated);  // former name
  static_assert(std::is_same_v<ogpsa::shard_layout, ogpsa::target_shard>);  // former name
#pragma GCC diagnostic pop
}
