// The rank policy every SVD estimator shares (detail::choose_rank), seen through a projector: one
// estimator's hyper-parameters serve blocks of very different sizes, so a block too small for the
// rank keeps what it has and reports the shortfall, and never fails the pass for the others.

#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/ogpsa.hpp>

#include "policies.hpp"
#include "support.hpp"

namespace t = ogpsa::test;
using ogpsa::family;
using ogpsa::index_t;

namespace {

struct degenerate_log {
  struct entry {
    std::string block;
    index_t kept, dropped;
  };
  std::vector<entry> seen;
  void on_degenerate(const ogpsa::degenerate_info& info) {
    seen.push_back({std::string(info.block), info.kept, info.dropped});
  }
};

}  // namespace

TEST_CASE_TEMPLATE_DEFINE(
    "a fixed rank beyond a small block's min(d, m) keeps what it has, reports the rest, and the "
    "other blocks are estimated",
    E, rank_beyond_small_blocks) {
  ogpsa::projector<E> p(t::with_rank<E>(5));
  t::matrix<float> weight = t::random_matrix<float>(40, 30, 1), gate = t::random_matrix<float>(50, 1, 2);
  std::vector<float> bias{1.0f, -2.0f, 0.5f};
  const auto w = p.add_block("weight", ogpsa::view(weight), family::left);
  const auto b = p.add_block("bias", ogpsa::view(bias), family::flat);
  const auto g = p.add_block("gate", ogpsa::view(gate), family::flat);
  p.begin_reference_pass();
  for (std::uint32_t i = 0; i < 4; ++i) {  // 4 snapshots for the flat blocks, 120 columns for the weight
    const t::matrix<float> rw = t::random_matrix<float>(40, 30, 10 + i),
                           rg = t::random_matrix<float>(50, 1, 20 + i);
    const t::matrix<float> rb = t::random_matrix<float>(3, 1, 30 + i);
    p.feed(w, ogpsa::view(rw));
    p.feed(b, ogpsa::view(rb.data(), 3));
    p.feed(g, ogpsa::view(rg));
  }
  degenerate_log log;
  p.finish_reference_pass(log);
  CHECK(p.subspace_of(w)->rank() == 5);
  CHECK(p.subspace_of(w)->dropped == 0);
  CHECK(p.subspace_of(b)->rank() == 3);  // min(d, m) = min(3, 4)
  CHECK(p.subspace_of(b)->dropped == 2);
  CHECK(p.subspace_of(g)->rank() == 4);  // min(50, 4)
  CHECK(p.subspace_of(g)->dropped == 1);
  REQUIRE(log.seen.size() == 2);
  CHECK(log.seen[0].block == "bias");
  CHECK(log.seen[0].kept == 3);
  CHECK(log.seen[0].dropped == 2);
  CHECK(log.seen[1].block == "gate");
  CHECK(log.seen[1].kept == 4);
  CHECK(log.seen[1].dropped == 1);
  // The bias's basis spans all of R^3: projecting removes everything.
  p.project();
  CHECK(Eigen::Map<const t::vector<float>>(bias.data(), 3).norm() < 1e-5f);
}
TEST_CASE_TEMPLATE_APPLY(rank_beyond_small_blocks, t::ranked_estimators);

TEST_CASE("exact_svd selects by energy alone, with no rank to cap it") {
  // Exactly rank 12 (above the default fixed rank 8), squared singular values decaying by 0.8^2.
  const auto data = t::low_rank_plus_noise<double>(300, 30, 12, 0.0, 5, 0.8);
  ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<double>> p(
      ogpsa::exact_svd{.energy = 1.0});
  t::matrix<double> g = t::random_matrix<double>(300, 30, 6);
  const auto id = p.add_block("w", ogpsa::view(g), family::left);
  p.begin_reference_pass();
  p.feed(id, ogpsa::view(data));
  p.finish_reference_pass();
  CHECK(p.subspace_of(id)->rank() == 12);
  CHECK(p.subspace_of(id)->dropped == 0);
  CHECK(ogpsa::exact_svd{}.selected_rank() == 8);  // no energy: the default fixed rank
  CHECK(ogpsa::exact_svd{.energy = 0.5}.selected_rank() == std::nullopt);
  CHECK(ogpsa::exact_svd{.rank = 3, .energy = 0.5}.selected_rank() == 3);
}
