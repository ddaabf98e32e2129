#pragma once
/// \file
/// A team of threads for one call, and the split of weighted work items among its members.

#include <algorithm>
#include <cstddef>
#include <span>
#include <utility>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "ogpsa/config.hpp"

namespace ogpsa::cpu::detail {

/// Runs `body(member, members)` on every member of a team of up to `threads` threads (one OpenMP
/// parallel region; OpenMP may grant fewer), or on the calling thread alone. `body` must not throw.
template <class Body>
void run_team([[maybe_unused]] int threads, Body&& body) {
#if defined(_OPENMP)
  if (threads > 1) {
#pragma omp parallel num_threads(threads)
    body(omp_get_thread_num(), omp_get_num_threads());
    return;
  }
#endif
  body(0, 1);
}

/// Waits until every member of the current team arrives (nothing to wait for on one thread).
inline void team_barrier() noexcept {
#if defined(_OPENMP)
#pragma omp barrier
#endif
}

/// The items [first, last) that `member` of `members` processes, given the running totals of the
/// items' weights (`prefix[i]` = weight of items before i; one entry more than there are items).
/// Consecutive members get consecutive ranges whose weights differ from an equal share by less
/// than one item's weight.
inline std::pair<std::size_t, std::size_t> share(std::span<const index_t> prefix, int member,
                                                 int members) {
  const index_t total = prefix.back();
  auto boundary = [&](int m) -> std::size_t {
    if (m >= members) return prefix.size() - 1;
    const index_t target = static_cast<index_t>(static_cast<double>(total) * m / members);
    return static_cast<std::size_t>(std::lower_bound(prefix.begin(), prefix.end() - 1, target) -
                                    prefix.begin());
  };
  return {boundary(member), boundary(member + 1)};
}

}  // namespace ogpsa::cpu::detail
