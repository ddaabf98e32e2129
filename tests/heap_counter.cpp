// The counting allocator of heap_counter.hpp: malloc, calloc, realloc, free and the aligned
// allocators forward to glibc's own entry points and add or subtract each block's usable size.

#include "heap_counter.hpp"

#include <atomic>
#include <cerrno>
#include <cstddef>

#include <malloc.h>

#if defined(__SANITIZE_ADDRESS__)
#define OGPSA_TEST_COUNT_HEAP 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OGPSA_TEST_COUNT_HEAP 0
#endif
#endif
#ifndef OGPSA_TEST_COUNT_HEAP
#define OGPSA_TEST_COUNT_HEAP 1
#endif

namespace {

std::atomic<std::int64_t> live_bytes{0};
std::atomic<std::int64_t> peak_bytes{0};

}  // namespace

namespace ogpsa::test::heap {

bool counting() noexcept {
  return OGPSA_TEST_COUNT_HEAP != 0;
}
std::int64_t live() noexcept {
  return live_bytes.load();
}
std::int64_t peak() noexcept {
  return peak_bytes.load();
}
void reset_peak() noexcept {
  peak_bytes.store(live_bytes.load());
}

}  // namespace ogpsa::test::heap

#if OGPSA_TEST_COUNT_HEAP

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

namespace {

// Only the counting build calls it (under AddressSanitizer it would be unused, an error with -Werror).
void raise_peak(std::int64_t now) noexcept {
  std::int64_t seen = peak_bytes.load(std::memory_order_relaxed);
  while (now > seen && !peak_bytes.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
}

void* allocated(void* p) noexcept {
  if (p != nullptr)
    raise_peak(live_bytes.fetch_add(static_cast<std::int64_t>(malloc_usable_size(p))) +
               static_cast<std::int64_t>(malloc_usable_size(p)));
  return p;
}

void released(void* p) noexcept {
  if (p != nullptr) live_bytes.fetch_sub(static_cast<std::int64_t>(malloc_usable_size(p)));
}

}  // namespace

extern "C" {

void* malloc(std::size_t n) noexcept {
  return allocated(__libc_malloc(n));
}
void* calloc(std::size_t count, std::size_t n) noexcept {
  return allocated(__libc_calloc(count, n));
}
void* memalign(std::size_t alignment, std::size_t n) noexcept {
  return allocated(__libc_memalign(alignment, n));
}
void* aligned_alloc(std::size_t alignment, std::size_t n) noexcept {
  return allocated(__libc_memalign(alignment, n));
}
void* valloc(std::size_t n) noexcept {
  return allocated(__libc_memalign(4096, n));
}

int posix_memalign(void** out, std::size_t alignment, std::size_t n) noexcept {
  void* p = __libc_memalign(alignment, n);
  if (p == nullptr) return ENOMEM;
  *out = allocated(p);
  return 0;
}

void* realloc(void* p, std::size_t n) noexcept {
  const std::int64_t before = p != nullptr ? static_cast<std::int64_t>(malloc_usable_size(p)) : 0;
  void* q = __libc_realloc(p, n);
  if (q == nullptr && n != 0) return nullptr;  // failed: p is still held
  live_bytes.fetch_sub(before);
  return allocated(q);
}

void free(void* p) noexcept {
  released(p);
  __libc_free(p);
}

}  // extern "C"

#endif
