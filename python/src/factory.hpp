#pragma once
/// \file
/// `make_for<Estimator>`: the projector models of one estimator, for every rule and element pair
/// the extension supports. Included only by make_*.cpp, each of which instantiates it once.
///
/// Element pairs (gradient, basis): float32, bfloat16, float16 and float64 gradients with float32
/// or bfloat16 bases, and float64 gradients with float64 bases.

#include <memory>
#include <variant>

#include "handle.hpp"
#include "model.hpp"

namespace ogpsa::python {
namespace detail {

/// Calls `f.template operator()<T>()` with the element type of `d`.
template <class F>
decltype(auto) with_element(dtype d, F&& f) {
  switch (d) {
    case dtype::float32:
      return f.template operator()<float>();
    case dtype::bfloat16:
      return f.template operator()<bfloat16>();
    case dtype::float16:
      return f.template operator()<float16>();
    case dtype::float64:
      break;
  }
  return f.template operator()<double>();
}

template <class Gradient, class Basis>
inline constexpr bool compiled_pair = std::is_same_v<Basis, float> || std::is_same_v<Basis, bfloat16> ||
                                      (std::is_same_v<Basis, double> && std::is_same_v<Gradient, double>);

const char* name_of(dtype d);

}  // namespace detail

template <class Estimator>
std::unique_ptr<projector_handle> make_for(const Estimator& estimator, const rule_choice& rule,
                                           const any_schedule& schedule, dtype gradient, dtype basis) {
  return std::visit(
      [&]<class Rule>(const Rule& r) {
        return detail::with_element(gradient, [&]<class G>() {
          return detail::with_element(basis, [&]<class B>() -> std::unique_ptr<projector_handle> {
            if constexpr (detail::compiled_pair<G, B>) {
              using projector_type = projector<Estimator, Rule, any_schedule, storage<G, B>>;
              return std::make_unique<projector_model<projector_type>>(
                  projector_type(estimator, r, schedule));
            } else {
              OGPSA_FAIL(
                  invalid_argument, "ogpsa.Projector",
                  "a " << detail::name_of(basis) << " basis for " << detail::name_of(gradient)
                       << " gradients is not compiled into the extension (bases are float32 or bfloat16, "
                          "or float64 for float64 gradients)");
            }
          });
        });
      },
      rule);
}

}  // namespace ogpsa::python
