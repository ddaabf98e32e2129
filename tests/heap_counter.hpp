#pragma once
// Counts the bytes this process holds on the heap: the executable that links heap_counter.cpp
// replaces malloc and friends with counting wrappers over glibc's allocator (every allocation of
// Eigen, the standard library and OpenMP goes through them), so a test can measure the peak of a
// computation. Not under AddressSanitizer, which owns malloc: `counting()` is then false.

#include <cstdint>

namespace ogpsa::test::heap {

/// Whether allocations are counted in this build.
bool counting() noexcept;

/// Bytes allocated and not yet freed (as glibc's usable sizes).
std::int64_t live() noexcept;

/// The most bytes live at once since the last `reset_peak()`.
std::int64_t peak() noexcept;

/// Starts a new peak at the bytes live now.
void reset_peak() noexcept;

/// The peak of the bytes allocated from its construction on, above what was live then.
class peak_scope {
 public:
  peak_scope() noexcept : base_(live()) { reset_peak(); }
  std::int64_t bytes() const noexcept { return peak() - base_; }

 private:
  std::int64_t base_;
};

}  // namespace ogpsa::test::heap
