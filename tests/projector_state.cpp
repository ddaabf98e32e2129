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

TEST_CASE("restoring into a projector with other blocks is refused and changes nothing") {
  model m;
  projector a(ogpsa::exact_svd{.rank = 1});
  m.register_with(a);
  const auto empty_state = a.state();
  CHECK_FALSE(empty_state.blocks[0].has_subspace);

  projector other;
  std::vector<float> g(5);
  other.add_block("w1", ogpsa::view(g));
  t::check_throws_with<ogpsa::shape_error>([&] { other.restore(empty_state); }, {"3 blocks", "has 1"});

  auto renamed = empty_state;
  renamed.blocks[1].name = "w9";
  t::check_throws_with<ogpsa::shape_error>([&] { a.restore(renamed); }, {"'w9'", "'w2'"});

  auto wrong_rows = empty_state;
  wrong_rows.blocks[1].has_subspace = true;
  wrong_rows.blocks[1].basis = Eigen::MatrixXf::Zero(14, 1);
  t::check_throws_with<ogpsa::shape_error>([&] { a.restore(wrong_rows); }, {"14 rows", "dimension is 15"});
  CHECK(a.subspace_of(ogpsa::block_id{1}) == nullptr);
}
