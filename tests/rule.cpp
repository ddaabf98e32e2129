#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/ogpsa.hpp>

#include "support.hpp"

using ogpsa::family;

namespace {

/// A rule of a third party that vouches for flat and left blocks only.
struct flat_and_left {
  static constexpr const char* name = "flat_and_left";
  void validate() const noexcept {}
  constexpr bool supports(family f) const noexcept { return f != family::right; }
  constexpr bool scales_gradient() const noexcept { return false; }
  template <class T>
  T apply(T*, ogpsa::index_t) const noexcept {
    return T(1);
  }
};

/// The same without `supports`: not a rule.
struct without_supports {
  static constexpr const char* name = "without_supports";
  void validate() const noexcept {}
  constexpr bool scales_gradient() const noexcept { return false; }
  template <class T>
  T apply(T*, ogpsa::index_t) const noexcept {
    return T(1);
  }
};

}  // namespace

TEST_CASE("a rule says which families it supports") {
  static_assert(ogpsa::projection_rule<flat_and_left>);
  static_assert(!ogpsa::projection_rule<without_supports>);
  CHECK(ogpsa::detail::supported_families(flat_and_left{}) == "flat and left blocks");
  CHECK(ogpsa::detail::supported_families(ogpsa::orthogonal{}) == "flat, left and right blocks");
  CHECK(ogpsa::detail::supported_families(ogpsa::conflict_only{}) == "flat blocks");
}

TEST_CASE("add_block refuses a family the rule does not support, naming the block, the family and the rule") {
  ogpsa::projector<ogpsa::exact_svd, flat_and_left> p(ogpsa::exact_svd{.rank = 1});
  std::vector<float> g(12);
  CHECK_NOTHROW(p.add_block("a", ogpsa::view(g.data(), 3, 4), family::left));
  ogpsa::test::check_throws_with<ogpsa::invalid_argument>(
      [&] { p.add_block("b", ogpsa::view(g.data(), 3, 4), family::right); },
      {"ogpsa::projector::add_block()", "flat_and_left supports flat and left blocks only", "block 'b' is right"});
  CHECK(p.block_count() == 1);
}
