#pragma once
/// \file
/// The strided device matrix every device view is reduced to (see `ogpsa/detail/matrix_ref.hpp`).

#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/memory_space.hpp"

namespace ogpsa::cuda::detail {

template <class T>
using device_ref = ogpsa::detail::matrix_ref<T, cuda_memory_tag>;

}  // namespace ogpsa::cuda::detail
