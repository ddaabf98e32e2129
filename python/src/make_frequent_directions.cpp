/// \file
/// The extension's projectors that estimate with `ogpsa::frequent_directions` (one translation unit per
/// estimator, so they compile in parallel).

#include "factory.hpp"

namespace ogpsa::python {

template std::unique_ptr<projector_handle> make_for<frequent_directions>(const frequent_directions&,
                                                                         const rule_choice&,
                                                                         const any_schedule&, dtype, dtype);

}  // namespace ogpsa::python
