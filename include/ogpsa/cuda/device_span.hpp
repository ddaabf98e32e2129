#pragma once
/// \file
/// `ogpsa::cuda::device_span<T>`: a pointer and a count of elements in device memory, for
/// buffers the host hands to device code (an all-reduce, a kernel) but must not touch itself.

#include <cstddef>

namespace ogpsa::cuda {

template <class T>
struct device_span {
  T* data = nullptr;
  std::size_t size = 0;
};

}  // namespace ogpsa::cuda
