#include "doctest_after_glog.hpp"  // first: see there

#include <sstream>
#include <vector>

#include <ogpsa/ogpsa.hpp>
#include <ogpsa/torch/serialize.hpp>

#include "support.hpp"

namespace t = ogpsa::test;
namespace ot = ogpsa::torch;

namespace {

/// A state with every kind of block: right with a rank-2 basis, flat rank 1, and one never estimated.
template <class T>
ogpsa::projector_state<T> estimated_state() {
  t::matrix<T> w = t::matrix<T>::Zero(6, 5), b = t::matrix<T>::Zero(4, 1);
  ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<T>> p(
      ogpsa::exact_svd{.rank = 2});
  const auto wi = p.add_block("fc.weight", ogpsa::view(w), ogpsa::family::right);
  const auto bi = p.add_block("fc.bias", ogpsa::view(b));
  p.begin_reference_pass();
  for (std::uint32_t s = 0; s < 3; ++s) {
    const t::matrix<T> rw = t::random_matrix<T>(6, 5, s), rb = t::random_matrix<T>(4, 1, 10 + s);
    p.feed(wi, ogpsa::view(rw));
    p.feed(bi, ogpsa::view(rb));
  }
  p.finish_reference_pass();
  p.project();
  p.project();
  auto state = p.state();
  state.blocks.push_back({"frozen_until_later", ogpsa::family::left, {3, 3}, false, {}, {}, 0, 0});
  return state;
}

template <class T>
ogpsa::projector_state<T> round_trip(const ogpsa::projector_state<T>& state) {
  torch::serialize::OutputArchive out;
  ot::write_state(out, state);
  std::stringstream bytes;
  out.save_to(bytes);
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  return ot::read_state<T>(in);
}

}  // namespace

TEST_CASE_TEMPLATE("a projector state survives a LibTorch archive bit for bit", T, float, double) {
  const auto saved = estimated_state<T>();
  const auto loaded = round_trip(saved);
  CHECK(loaded.steps == 2);
  CHECK(loaded.steps == saved.steps);
  CHECK(loaded.steps_since_refresh == saved.steps_since_refresh);
  CHECK(loaded.refreshes == saved.refreshes);
  REQUIRE(loaded.blocks.size() == saved.blocks.size());
  for (std::size_t i = 0; i < saved.blocks.size(); ++i) {
    const auto &a = saved.blocks[i], &b = loaded.blocks[i];
    CHECK(b.name == a.name);
    CHECK(b.kind == a.kind);
    CHECK(b.extents == a.extents);
    CHECK(b.has_subspace == a.has_subspace);
    CHECK(b.basis.rows() == a.basis.rows());
    CHECK(b.basis.cols() == a.basis.cols());
    CHECK(b.basis == a.basis);  // exact equality
    CHECK(b.strengths == a.strengths);
    CHECK(b.captured_energy == a.captured_energy);
    CHECK(b.dropped == a.dropped);
  }
  CHECK(saved.blocks[0].basis.cols() == 2);
}

TEST_CASE("archives that do not hold a projector state are clear errors") {
  torch::serialize::OutputArchive empty;
  empty.write("unrelated", torch::zeros({1}));
  std::stringstream bytes;
  empty.save_to(bytes);
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  t::check_throws_with<ogpsa::invalid_argument>([&] { (void)ot::read_state<float>(in); },
                                                {"ogpsa::torch::read_state()", "no entry 'format'"});

  torch::serialize::OutputArchive future;
  ot::write_state(future, estimated_state<float>());
  future.write("format", c10::IValue(std::int64_t{2}));
  std::stringstream future_bytes;
  future.save_to(future_bytes);
  torch::serialize::InputArchive future_in;
  future_in.load_from(future_bytes);
  t::check_throws_with<ogpsa::invalid_argument>([&] { (void)ot::read_state<float>(future_in); },
                                                {"format 2", "reads format 1"});
}

TEST_CASE("a state is read back only with its own basis type") {
  torch::serialize::OutputArchive out;
  ot::write_state(out, estimated_state<float>());
  std::stringstream bytes;
  out.save_to(bytes);
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  t::check_throws_with<ogpsa::invalid_argument>([&] { (void)ot::read_state<double>(in); },
                                                {"tensor 'basis'", "Double", "got dtype Float"});
}
