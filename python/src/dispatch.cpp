/// \file
/// `make_projector`: picks the translation unit compiled for the chosen estimator.

#include "handle.hpp"

namespace ogpsa::python {

std::unique_ptr<projector_handle> make_projector(const estimator_choice& estimator, const rule_choice& rule,
                                                 const any_schedule& schedule, dtype gradient, dtype basis) {
  return std::visit([&](const auto& e) { return make_for(e, rule, schedule, gradient, basis); }, estimator);
}

}  // namespace ogpsa::python

namespace ogpsa::python::detail {

const char* name_of(dtype d) {
  switch (d) {
    case dtype::float32:
      return "float32";
    case dtype::bfloat16:
      return "bfloat16";
    case dtype::float16:
      return "float16";
    case dtype::float64:
      break;
  }
  return "float64";
}

}  // namespace ogpsa::python::detail
