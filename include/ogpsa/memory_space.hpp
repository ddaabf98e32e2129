#pragma once
/// \file
/// Memory-space tags: where a view's elements live. The backend that operates on a view is chosen
/// at compile time from this tag (see `ogpsa/backend.hpp`), never from a global switch.

#include <concepts>
#include <type_traits>

namespace ogpsa {

/// Ordinary host memory, addressable by the CPU. Served by the Eigen backend.
struct host_memory_tag {
  static constexpr const char* name = "host";
};

/// CUDA device (global) memory. Served by the CUDA backend from `<ogpsa/cuda.cuh>`.
struct cuda_memory_tag {
  static constexpr const char* name = "cuda device";
};

/// A memory-space tag: an empty type with a printable name.
template <class Space>
concept memory_space = std::is_empty_v<Space> && requires {
  { Space::name } -> std::convertible_to<const char*>;
};

}  // namespace ogpsa
