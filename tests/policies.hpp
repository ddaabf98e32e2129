#pragma once
// The estimators and rules that the tests every policy must pass run over: the umbrella's lists
// (`ogpsa::estimators`, `ogpsa::rules`), the parts of them a test needs, and the hyper-parameters a
// test gives a policy. A policy added to the umbrella's list joins those tests with its defaults
// (and the test's rank, where it has one); nothing here names it.

#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <ogpsa/ogpsa.hpp>

namespace ogpsa::test {

/// An estimator with a fixed-rank hyper-parameter `rank` (the SVD estimators; the rank of
/// mean_gradient's subspace is the number of sets it was fed).
template <class E>
concept ranked = requires(E e, index_t k) {
  e.rank = k;
};

/// E's defaults, with rank k where E has a rank.
template <class E>
E with_rank(index_t k) {
  E e{};
  if constexpr (ranked<E>) e.rank = k;
  return e;
}

/// The families a policy supports, in the order flat, left, right.
template <class Policy>
std::vector<family> families_of(const Policy& p = {}) {
  std::vector<family> out;
  for (family f : {family::flat, family::left, family::right})
    if (p.supports(f)) out.push_back(f);
  return out;
}

/// The types of the tuple `List` for which `Keep<T>::value` holds, as a tuple (what doctest's
/// TEST_CASE_TEMPLATE_APPLY takes).
template <template <class> class Keep, class List>
struct filter;
template <template <class> class Keep, class... Ts>
struct filter<Keep, std::tuple<Ts...>> {
  using type = decltype(std::tuple_cat(
      std::declval<std::conditional_t<Keep<Ts>::value, std::tuple<Ts>, std::tuple<>>>()...));
};
template <template <class> class Keep, class List>
using filter_t = typename filter<Keep, List>::type;

template <class E>
struct is_ranked : std::bool_constant<ranked<E>> {};

/// The estimators with a fixed rank: what the tests of the rank they share run over.
using ranked_estimators = filter_t<is_ranked, ogpsa::estimators>;

/// Calls f.template operator()<T>() for every type T of the tuple `List`, in order.
template <class List, class F>
void for_each_type(F&& f) {
  [&]<class... Ts>(std::tuple<Ts...>*) { (f.template operator()<Ts>(), ...); }(static_cast<List*>(nullptr));
}

/// Instances of a rule that between them take every path of its `apply`: its defaults, or where a
/// hyper-parameter chooses another path, a value of it for each.
template <class Rule>
std::vector<Rule> rule_samples() {
  return {Rule{}};
}
/// A fraction removed (the default, alpha = 1, is `orthogonal`).
template <>
inline std::vector<soft> rule_samples<soft>() {
  return {soft{.alpha = 0.75}};
}
/// Per direction (the default), and the threshold mode, which scales whole gradients.
template <>
inline std::vector<conflict_only> rule_samples<conflict_only>() {
  return {conflict_only{}, conflict_only{.behaviour = conflict_only::mode::threshold, .base_scale = 0.5}};
}

}  // namespace ogpsa::test
