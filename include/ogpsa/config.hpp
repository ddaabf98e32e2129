#pragma once
/// \file
/// Compiler-facing configuration shared by every header: the index type and the macro that marks
/// functions callable from both host and device code.

#include <cstddef>

/// Marks a function usable from host and CUDA device code; a plain `inline` under a host compiler.
#if defined(__CUDACC__)
#define OGPSA_HOST_DEVICE __host__ __device__ inline
#else
#define OGPSA_HOST_DEVICE inline
#endif

namespace ogpsa {

/// Signed index and extent type (Eigen's and BLAS's convention; differences of indices stay valid).
using index_t = std::ptrdiff_t;

}  // namespace ogpsa
