#pragma once
/// \file
/// The whole CPU library. Never includes a CUDA header; `<ogpsa/cuda.cuh>` adds the CUDA backend.
///
/// OGPSA (Sun et al., "Orthogonal Gradient Projection for Safety Alignment", arXiv 2602.07892)
/// estimates a low-rank capability subspace from reference gradients and removes from every
/// safety gradient its component in that subspace before the optimizer step.

#include <tuple>

#include "ogpsa/version.hpp"
#include "ogpsa/config.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/memory_space.hpp"
#include "ogpsa/element.hpp"
#include "ogpsa/bfloat16.hpp"
#include "ogpsa/float16.hpp"
#include "ogpsa/tensor_view.hpp"
#include "ogpsa/eigen_view.hpp"
#include "ogpsa/family.hpp"
#include "ogpsa/sharding.hpp"
#include "ogpsa/reducer.hpp"
#include "ogpsa/backend.hpp"
#include "ogpsa/cpu/backend.hpp"
#include "ogpsa/subspace.hpp"
#include "ogpsa/estimator.hpp"
#include "ogpsa/estimators/mean_gradient.hpp"
#include "ogpsa/estimators/exact_svd.hpp"
#include "ogpsa/estimators/randomized_svd.hpp"
#include "ogpsa/estimators/single_pass_svd.hpp"
#include "ogpsa/estimators/frequent_directions.hpp"
#include "ogpsa/rule.hpp"
#include "ogpsa/rules/orthogonal.hpp"
#include "ogpsa/rules/soft.hpp"
#include "ogpsa/rules/conflict_only.hpp"
#include "ogpsa/schedule.hpp"
#include "ogpsa/callbacks.hpp"
#include "ogpsa/storage.hpp"
#include "ogpsa/projector_state.hpp"
#include "ogpsa/projector.hpp"

namespace ogpsa {

/// Every estimator the library ships, for code generic over them: the tests that every estimator
/// must pass run over this list, and a program may pick one by its `name` at run time.
///
/// A new estimator is a header `ogpsa/estimators/<name>.hpp` declaring `struct <name>`, its include
/// above, its name here and a test file `tests/estimators/<name>.cpp`; the tests of the projector,
/// of sharding, of thread counts and of the CUDA backend take it up from this list.
using estimators = std::tuple<mean_gradient, exact_svd, randomized_svd, single_pass_svd, frequent_directions>;

/// Every projection rule the library ships, as `estimators` (a new rule: `ogpsa/rules/<name>.hpp`,
/// its include above, its name here and `tests/rules/<name>.cpp`).
using rules = std::tuple<orthogonal, soft, conflict_only>;

}  // namespace ogpsa
