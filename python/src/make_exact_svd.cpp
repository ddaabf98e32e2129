/// \file
/// The extension's projectors that estimate with `ogpsa::exact_svd` (one translation unit per
/// estimator, so they compile in parallel).

#include "factory.hpp"

namespace ogpsa::python {

template std::unique_ptr<projector_handle> make_for<exact_svd>(const exact_svd&, const rule_choice&,
                                                               const any_schedule&, dtype, dtype);

}  // namespace ogpsa::python
