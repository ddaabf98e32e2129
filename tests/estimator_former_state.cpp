// An estimator written against the former name of `pass<Backend, Work>`, `state<Backend, Work>`, is
// still accepted. Its deprecation is reported in <ogpsa/estimator.hpp>, so it is silenced around the
// include: this translation unit is the only one that uses the former name.

#include <utility>
#include <vector>

#include <doctest/doctest.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <ogpsa/ogpsa.hpp>
#pragma GCC diagnostic pop

#include "support.hpp"

namespace {

/// exact_svd under another name whose per-block pass is declared as the former name, state.
struct former_exact_svd {
  static constexpr const char* name = "former_exact_svd";
  void validate() const {}
  bool supports(ogpsa::family) const { return true; }
  operator ogpsa::exact_svd() const { return {.rank = 1}; }
  template <class Backend, class Work>
  using state = ogpsa::exact_svd_pass<Backend, Work>;  // former name
};

}  // namespace

TEST_CASE("an estimator that declares the former name state<Backend, Work> still estimates") {
  static_assert(ogpsa::subspace_estimator<former_exact_svd>);
  static_assert(std::is_same_v<ogpsa::estimator_pass<former_exact_svd, ogpsa::cpu::backend, float>,
                               ogpsa::exact_svd_pass<ogpsa::cpu::backend, float>>);
  std::vector<float> g(6, 1.0f);
  const std::vector<float> r{1, 2, 0, 0, 0, 0};
  ogpsa::projector<former_exact_svd> p;
  const auto id = p.add_block("w", ogpsa::view(g));
  p.begin_reference_pass();
  p.feed(id, ogpsa::view(r));
  p.finish_reference_pass();
  REQUIRE(p.subspace_of(id) != nullptr);
  CHECK(p.subspace_of(id)->rank() == 1);
}
