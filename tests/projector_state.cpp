#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/ogpsa.hpp>

#include "support.hpp"

namespace t = ogpsa::test;

namespace {

using projector = ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<float>>;

struct model {
  t::matrix<float> w1 = t::matrix<float>::Zero(20, 10);
  t::matrix<float> w2 = t::matrix<float>::Zero(15, 1);
  std::vector<float> bias = std::vector<float>(7);

  void register_with(projector& p) {
    p.add_block("w1", ogpsa::view(w1), ogpsa::family::right);
    p.add_block("w2", ogpsa::view(w2), ogpsa::family::flat);
    p.add_block("bias", ogpsa::view(bias), ogpsa::family::flat);
  }
};

}  // namespace

TEST_CASE("the projector state survives a round trip bit-exactly") {
  model m;
  projector a(ogpsa::exact_svd{.rank = 2});
  m.register_with(a);
  a.begin_reference_pass();
  for (std::uint32_t s = 0; s < 3; ++s) {
    const t::matrix<float> r1 = t::random_matrix<float>(20, 10, s), r2 = t::random_matrix<float>(15, 1, 10 + s);
    a.feed(ogpsa::block_id{0}, ogpsa::view(r1));
    a.feed(ogpsa::block_id{1}, ogpsa::view(r2));
    const std::vector<float> bias_ref(7, static_cast<float>(s + 1));
    a.feed(ogpsa::block_id{2}, ogpsa::view(bias_ref));
  }
  a.finish_reference_pass();
  a.project();
  const auto saved = a.state();
  CHECK(saved.steps == 1);
  REQUIRE(saved.blocks.size() == 3);
  CHECK(saved.blocks[0].kind == ogpsa::family::right);
  CHECK(saved.blocks[2].basis.cols() == 1);  // the bias references are parallel: rank 1

  model m2;
  projector b(ogpsa::exact_svd{.rank = 2});
  m2.register_with(b);
  b.restore(saved);
  const auto again = b.state();
  CHECK(again.steps == saved.steps);
  CHECK(again.refreshes == saved.refreshes);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(again.blocks[i].basis == saved.blocks[i].basis);  // exact equality
    CHECK(again.blocks[i].strengths == saved.blocks[i].strengths);
  }
  m.w1.setRandom();
  m2.w1 = m.w1;
  a.project();
  b.project();
  CHECK(m.w1 == m2.w1);
}

namespace {

/// A projector over `m` estimated from references drawn from `seed`, after `steps` projections.
void estimate(projector& p, std::uint32_t seed, int steps) {
  p.begin_reference_pass();
  for (std::uint32_t s = 0; s < 3; ++s) {
    const t::matrix<float> r1 = t::random_matrix<float>(20, 10, seed + s),
                           r2 = t::random_matrix<float>(15, 1, seed + 10 + s);
    const std::vector<float> bias_ref(7, static_cast<float>(seed + s));
    p.feed(ogpsa::block_id{0}, ogpsa::view(r1));
    p.feed(ogpsa::block_id{1}, ogpsa::view(r2));
    p.feed(ogpsa::block_id{2}, ogpsa::view(bias_ref));
  }
  p.finish_reference_pass();
  for (int i = 0; i < steps; ++i) p.project();
}

}  // namespace

TEST_CASE("restoring into a projector with other blocks is refused and changes nothing") {
  model m, n;
  projector a(ogpsa::exact_svd{.rank = 2}), other_run(ogpsa::exact_svd{.rank = 2});
  m.register_with(a);
  n.register_with(other_run);
  estimate(a, 1, 2);
  estimate(other_run, 50, 5);
  const auto before = a.state();
  // Every block of this state has a subspace, each different from a's, and other counters: a
  // restore that assigned block by block before a later block failed would show.
  const auto valid = other_run.state();
  REQUIRE(valid.blocks[0].basis != before.blocks[0].basis);
  const auto check_unchanged = [&] {
    const auto now = a.state();
    CHECK(now.steps == before.steps);
    CHECK(now.steps_since_refresh == before.steps_since_refresh);
    CHECK(now.refreshes == before.refreshes);
    for (std::size_t i = 0; i < now.blocks.size(); ++i) {
      CAPTURE(i);
      CHECK(t::same_bits(now.blocks[i].basis, before.blocks[i].basis));
      CHECK(now.blocks[i].strengths == before.blocks[i].strengths);
    }
  };

  projector small;
  std::vector<float> g(5);
  small.add_block("w1", ogpsa::view(g));
  t::check_throws_with<ogpsa::shape_error>([&] { small.restore(valid); }, {"3 blocks", "has 1"});

  auto renamed = valid;
  renamed.blocks[2].name = "b9";
  t::check_throws_with<ogpsa::shape_error>([&] { a.restore(renamed); }, {"'b9'", "'bias'"});
  check_unchanged();

  auto wrong_rows = valid;
  wrong_rows.blocks[2].basis = Eigen::MatrixXf::Zero(6, 1);
  t::check_throws_with<ogpsa::shape_error>([&] { a.restore(wrong_rows); }, {"6 rows", "dimension is 7"});
  check_unchanged();

  a.restore(valid);  // the valid state itself is accepted
  CHECK(a.state().steps == 5);
}
