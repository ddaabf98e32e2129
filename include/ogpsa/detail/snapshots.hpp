#pragma once
/// \file
/// The reference snapshots of one pass, kept by the estimators that need several passes over them.

#include <vector>

#include "ogpsa/config.hpp"
#include "ogpsa/detail/matrix_ref.hpp"

namespace ogpsa::detail {

/// Every column fed in a pass, copied into the backend in the working type, as the list of fed
/// blocks (A = [p_1 p_2 ...], d x m); the backend's stacked primitives read it in one pass.
template <class Backend, class Work>
struct snapshots {
  using matrix = typename Backend::template matrix<Work>;

  std::vector<matrix> parts;
  index_t columns = 0;

  /// Copies the fed columns; returns the copy.
  template <class S>
  const matrix& add(typename Backend::execution& exec,
                    matrix_ref<const S, typename Backend::memory_space> fed) {
    matrix part = Backend::template zeros<Work>(exec, fed.rows, fed.cols);
    Backend::copy_into(exec, fed, part, 0);
    columns += fed.cols;
    parts.push_back(std::move(part));
    return parts.back();
  }
};

}  // namespace ogpsa::detail
