#pragma once
/// \file
/// The whole library with the CUDA backend: `<ogpsa/ogpsa.hpp>` plus `ogpsa::cuda::backend`,
/// which serves every view and projector whose memory space is `ogpsa::cuda_memory_tag`.
/// Compile with nvcc and link `ogpsa::cuda` (CUDA runtime, cuBLAS, cuSOLVER).
///
///     ogpsa::projector<ogpsa::mean_gradient, ogpsa::orthogonal, ogpsa::every_n_steps,
///                      ogpsa::storage<ogpsa::bfloat16, float, ogpsa::cuda_memory_tag>>
///         p({}, {}, {}, ogpsa::cuda::execution{stream});
///     p.add_block("fc.weight", ogpsa::view<ogpsa::cuda_memory_tag>(device_ptr, 4096, 4096));

#include "ogpsa/ogpsa.hpp"

#include "ogpsa/cuda/error.hpp"
#include "ogpsa/cuda/execution.hpp"
#include "ogpsa/cuda/matrix.hpp"
#include "ogpsa/cuda/workspace.hpp"
#include "ogpsa/cuda/backend.cuh"
