/// \file
/// The extension's projectors that estimate with `ogpsa::single_pass_svd` (one translation unit per
/// estimator, so they compile in parallel).

#include "factory.hpp"

namespace ogpsa::python {

template std::unique_ptr<projector_handle> make_for<single_pass_svd>(const single_pass_svd&,
                                                                     const rule_choice&, const any_schedule&,
                                                                     dtype, dtype);

}  // namespace ogpsa::python
