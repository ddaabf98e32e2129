#pragma once
// A projector's whole cycle on large blocks, shared by the tests of thread counts and of failures:
// register the blocks, run one reference pass, project the registered gradients.

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <ogpsa/ogpsa.hpp>

#include "policies.hpp"
#include "support.hpp"

namespace ogpsa::test {

/// A block: its gradient buffer (registered with the projector) and the reference gradients fed,
/// each from its reference set.
struct block_data {
  family kind;
  matrix<float> gradient;
  std::vector<matrix<float>> references;
  std::vector<index_t> sets;
};

inline block_data random_block(family kind, index_t rows, index_t cols, std::uint32_t seed,
                               std::vector<index_t> sets) {
  block_data b{kind, random_matrix<float>(rows, cols, seed), {}, std::move(sets)};
  for (std::size_t i = 0; i < b.sets.size(); ++i)
    b.references.push_back(random_matrix<float>(rows, cols, seed + 1 + static_cast<std::uint32_t>(i)));
  return b;
}

/// Blocks wide enough that every product of an estimator has many columns: a 4096 x 512 right block
/// (512 target dimensions, 4096 columns per gradient) fed one gradient and a 2048 x 64 left block
/// (tall data, 64 columns per gradient) fed two; for estimators of flat blocks only, two flat blocks
/// (one of 300001 elements, one 4096 x 512) fed from two reference sets.
inline std::vector<block_data> wide_blocks(bool flat_only) {
  if (flat_only)
    return {random_block(family::flat, 300001, 1, 10, {0, 0, 1}),
            random_block(family::flat, 4096, 512, 20, {0, 1})};
  return {random_block(family::right, 4096, 512, 30, {0}), random_block(family::left, 2048, 64, 40, {0, 0})};
}

/// E with hyper-parameters that give every product of its estimate on `wide_blocks` many columns:
/// rank 8, single_pass_svd's rank 40 (l = 50 sample directions: the sketch's own products are
/// 50 x 50), frequent_directions's blocks of 64 columns (few updates, each a product of dozens of columns).
template <class E>
E on_wide_blocks() {
  E e = with_rank<E>(8);
  if constexpr (std::is_same_v<E, single_pass_svd>) e.rank = 40;
  if constexpr (std::is_same_v<E, frequent_directions>) e.block = 64;
  return e;
}

template <class Estimator>
using float_projector = projector<Estimator, orthogonal, every_n_steps, storage<float>>;

/// A projector with `estimator` on at most `threads` threads.
template <class Estimator>
float_projector<Estimator> projector_on(const Estimator& estimator, int threads) {
  return float_projector<Estimator>(estimator, {}, {}, cpu::execution{.threads = threads});
}

template <class P>
std::vector<block_id> register_blocks(P& p, std::vector<block_data>& blocks) {
  std::vector<block_id> ids;
  for (std::size_t i = 0; i < blocks.size(); ++i)
    ids.push_back(p.add_block("b" + std::to_string(i), view(blocks[i].gradient), blocks[i].kind));
  return ids;
}

/// Feeds every block's reference gradients (within an active pass).
template <class P>
void feed_all(P& p, const std::vector<block_id>& ids, const std::vector<block_data>& blocks) {
  for (std::size_t i = 0; i < blocks.size(); ++i)
    for (std::size_t r = 0; r < blocks[i].references.size(); ++r)
      p.feed(ids[i], view(blocks[i].references[r]), blocks[i].sets[r]);
}

template <class P>
void reference_pass(P& p, const std::vector<block_id>& ids, const std::vector<block_data>& blocks) {
  p.begin_reference_pass();
  feed_all(p, ids, blocks);
  p.finish_reference_pass();
}

template <class P>
std::vector<matrix<float>> bases_of(const P& p, const std::vector<block_id>& ids) {
  std::vector<matrix<float>> bases;
  for (const block_id id : ids) bases.push_back(p.subspace_of(id)->basis);
  return bases;
}

/// What a whole cycle leaves: every block's basis and projected gradient.
struct cycle_outcome {
  std::vector<matrix<float>> bases;
  std::vector<matrix<float>> projected;
};

/// Registers `blocks`, runs one reference pass and one projection with `estimator` on at most
/// `threads` threads.
template <class Estimator>
cycle_outcome whole_cycle(const Estimator& estimator, int threads, std::vector<block_data> blocks) {
  auto p = projector_on(estimator, threads);
  const std::vector<block_id> ids = register_blocks(p, blocks);
  reference_pass(p, ids, blocks);
  p.project();
  cycle_outcome out{bases_of(p, ids), {}};
  for (const block_data& b : blocks) out.projected.push_back(b.gradient);
  return out;
}

}  // namespace ogpsa::test
