#pragma once
/// \file
/// A team of threads for one call, and the split of weighted work items among its members.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <span>
#include <utility>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "ogpsa/config.hpp"

namespace ogpsa::cpu::detail {

/// Runs `body(member, members)` on every member of a team of up to `threads` threads (one OpenMP
/// parallel region; OpenMP may grant fewer), or on the calling thread alone. An exception that
/// leaves a member's body is carried out of the team (OpenMP would end the process): once every
/// member is done, the first one caught is rethrown on the calling thread, so that a call fails
/// the same way on one thread or many. A body that waits at a barrier must not throw before it on
/// any member, or the others wait for ever: split it into phases with `run_phases` instead.
template <class Body>
void run_team([[maybe_unused]] int threads, Body&& body) {
#if defined(_OPENMP)
  if (threads > 1) {
    std::exception_ptr failure;
#pragma omp parallel num_threads(threads)
    {
      try {
        body(omp_get_thread_num(), omp_get_num_threads());
      } catch (...) {
#pragma omp critical(ogpsa_team_failure)
        if (!failure) failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
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

/// Runs `first(member, members)` on every member of a team as `run_team` does, then, once every
/// member is done with it, `second(member, members)`. When `first` throws on any member, no member
/// runs `second`, and the exception leaves as from `run_team`: whatever the number of threads, a
/// second phase that writes the results runs only after a first phase that succeeded everywhere.
template <class First, class Second>
void run_phases(int threads, First&& first, Second&& second) {
  std::atomic<bool> first_failed{false};
  run_team(threads, [&](int member, int members) {
    std::exception_ptr failure;
    try {
      first(member, members);
    } catch (...) {
      failure = std::current_exception();
      first_failed = true;
    }
    // Reached by every member, whether its first phase threw or not. A team of one has no barrier
    // to wait at (an orphaned one would bind to a caller's own parallel region).
    if (members > 1) team_barrier();
    if (failure) std::rethrow_exception(failure);
    if (!first_failed) second(member, members);
  });
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
