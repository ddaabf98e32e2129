// Running out of memory anywhere in a call, on any thread of its team, is a std::bad_alloc on every
// number of threads, and leaves the projector as it was: its bases, its gradients, and usable.
//
// A program of its own: it makes the n-th allocation after `fail_at(n)` fail (whichever thread
// makes it), by standing in for malloc, through which Eigen's and the standard library's allocations
// go. The allocations of the OpenMP runtime and the C library are not failed: OpenMP aborts the
// process when its own fail, whatever the caller does. Not built under AddressSanitizer, whose
// malloc cannot be stood in for.
//
// Each case sweeps n from 0 until a call completes without reaching its n-th allocation: every
// allocation the call makes fails once.

#include <dlfcn.h>
#include <link.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <new>
#include <string_view>
#include <type_traits>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/ogpsa.hpp>

#include "policies.hpp"
#include "support.hpp"
#include "whole_pass.hpp"

#if defined(__SANITIZE_ADDRESS__)
#error "this program stands in for malloc, which AddressSanitizer owns: do not build it with ASan"
#endif

namespace t = ogpsa::test;
using ogpsa::family;

namespace {

// ---- failing the n-th allocation ------------------------------------------------------------

std::atomic<long> allocations_left{-1};  ///< before the one that fails; negative: none fails
std::atomic<bool> failed{false};
std::size_t smallest_counted = 0;  ///< smaller allocations are neither counted nor failed

/// Whether this allocation is the one to fail (exactly one thread gets true).
bool fail_this(std::size_t bytes) {
  if (bytes < smallest_counted || allocations_left.load(std::memory_order_relaxed) < 0) return false;
  if (allocations_left.fetch_sub(1) != 0) return false;
  failed = true;
  return true;
}

/// The code whose allocations count: this program's own (ogpsa and Eigen are inlined into it) and
/// the standard library's (operator new).
struct code_range {
  std::uintptr_t begin = 0, end = 0;
};
std::array<code_range, 32> counted_code{};
std::size_t counted_ranges = 0;

int note_counted_code(dl_phdr_info* info, std::size_t, void*) {
  const std::string_view name = info->dlpi_name ? info->dlpi_name : "";
  if (!name.empty() && name.find("libstdc++") == std::string_view::npos) return 0;
  for (int i = 0; i < info->dlpi_phnum && counted_ranges < counted_code.size(); ++i) {
    const auto& segment = info->dlpi_phdr[i];
    if (segment.p_type != PT_LOAD || !(segment.p_flags & PF_X)) continue;
    const std::uintptr_t begin = info->dlpi_addr + segment.p_vaddr;
    counted_code[counted_ranges++] = {begin, begin + segment.p_memsz};
  }
  return 0;
}

bool counted_caller(const void* address) {
  const auto a = reinterpret_cast<std::uintptr_t>(address);
  for (std::size_t i = 0; i < counted_ranges; ++i)
    if (a >= counted_code[i].begin && a < counted_code[i].end) return true;
  return false;
}

/// Makes the n-th allocation of at least `smallest` bytes from now fail.
void fail_at(long n, std::size_t smallest) {
  if (counted_ranges == 0) dl_iterate_phdr(note_counted_code, nullptr);
  smallest_counted = smallest;
  failed = false;
  allocations_left = n;
}

/// Stops failing; returns whether an allocation failed since `fail_at`.
bool stop_failing() {
  allocations_left = -1;
  return failed.load();
}

// ---- the sweep ------------------------------------------------------------------------------

/// Runs `attempt` with its n-th allocation failing, for n = 0, 1, ... until an attempt completes
/// without reaching it; `prepare` runs before each attempt, allocating freely. After each failed
/// allocation, the attempt must have thrown bad_alloc and `after_failure` checks the state it left.
/// Returns the number of allocations failed.
long sweep(std::size_t smallest, const std::function<void()>& prepare, const std::function<void()>& attempt,
           const std::function<void()>& after_failure) {
  for (long n = 0;; ++n) {
    prepare();
    bool threw = false;
    fail_at(n, smallest);
    try {
      attempt();
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    const bool allocation_failed = stop_failing();
    if (!allocation_failed) {
      CHECK_FALSE(threw);
      return n;
    }
    CAPTURE(n);
    REQUIRE_MESSAGE(threw, "an allocation failed, and the call went on as if it had not");
    after_failure();
  }
}

// ---- the projector --------------------------------------------------------------------------

/// Blocks whose calls split across teams: a 20001 x 32 left block (tall data, column-major, rows in no whole number of panels) and,
/// unless `right_rows` is 0, a right block of `right_rows` x 256 (a row-major target: 256 target
/// dimensions, `right_rows` columns per gradient), each fed two gradients; for estimators of flat
/// blocks only, flat blocks of 150001 and 2048 x 256 elements.
std::vector<t::block_data> blocks_for(bool flat_only, ogpsa::index_t right_rows) {
  if (flat_only)
    return {t::random_block(family::flat, 150001, 1, 50, {0, 0, 1}),
            t::random_block(family::flat, 2048, 256, 60, {0, 1})};
  std::vector<t::block_data> blocks{t::random_block(family::left, 20001, 32, 80, {0, 0})};
  if (right_rows > 0) blocks.push_back(t::random_block(family::right, right_rows, 256, 70, {0, 0}));
  return blocks;
}

/// A projector on `threads` threads with its blocks, each with a basis from one reference pass.
template <class Estimator>
struct estimated {
  std::vector<t::block_data> blocks;
  t::float_projector<Estimator> p;
  std::vector<ogpsa::block_id> ids;
  std::vector<t::matrix<float>> bases;

  estimated(const Estimator& estimator, int threads, ogpsa::index_t right_rows)
      : blocks(blocks_for(!estimator.supports(family::left), right_rows)),
        p(t::projector_on(estimator, threads)) {
    ids = t::register_blocks(p, blocks);
    t::reference_pass(p, ids, blocks);
    bases = t::bases_of(p, ids);
  }

  std::vector<t::matrix<float>> gradients() const {
    std::vector<t::matrix<float>> g;
    for (const auto& b : blocks) g.push_back(b.gradient);
    return g;
  }

  void set_gradients(const std::vector<t::matrix<float>>& g) {
    for (std::size_t i = 0; i < blocks.size(); ++i) blocks[i].gradient = g[i];
  }

  void check_bases(const std::vector<t::matrix<float>>& expected) const {
    const auto now = t::bases_of(p, ids);
    for (std::size_t i = 0; i < ids.size(); ++i) CHECK(t::same_bits(now[i], expected[i]));
  }

  void check_gradients(const std::vector<t::matrix<float>>& expected) const {
    for (std::size_t i = 0; i < blocks.size(); ++i) CHECK(t::same_bits(blocks[i].gradient, expected[i]));
  }
};

/// A projection runs out of memory: bad_alloc, gradients and bases as they were, and the next
/// projection gives what one that never failed gives.
template <class Estimator>
void check_projection(const Estimator& estimator, int threads) {
  CAPTURE(threads);
  estimated<Estimator> e(estimator, threads, 2048);  // a right block of 2 MiB: a team's work
  const auto before = e.gradients();
  e.p.project();
  const auto projected = e.gradients();
  const long failures = sweep(
      1,
      [&] {
        e.set_gradients(before);
        auto fresh = t::projector_on(estimator, threads);  // a workspace that has allocated nothing yet
        t::register_blocks(fresh, e.blocks);
        fresh.restore(e.p.state());
        e.p = std::move(fresh);
      },
      [&] { e.p.project(); },
      [&] {
        e.check_gradients(before);
        e.check_bases(e.bases);
        e.p.project();
        e.check_gradients(projected);
      });
  CHECK(failures > 0);
}

/// A reference pass runs out of memory: bad_alloc, every basis as it was, the projector usable, and
/// a pass that completes gives what one that never failed gives.
template <class Estimator>
void check_reference_pass(const Estimator& estimator, int threads) {
  CAPTURE(threads);
  estimated<Estimator> e(estimator, threads, 0);  // one block: fewer allocations to fail, one by one
  const auto gradients = e.gradients();
  e.p.project();
  const auto projected = e.gradients();
  // The reference pass once more, on data of its own: the bases it commits.
  for (auto& b : e.blocks)
    for (auto& r : b.references) r = -r;
  const long failures = sweep(
      1024, [&] { e.p.abandon_reference_pass(); }, [&] { t::reference_pass(e.p, e.ids, e.blocks); },
      [&] {
        e.p.abandon_reference_pass();
        e.check_bases(e.bases);
        e.set_gradients(gradients);
        e.p.project();
        e.check_gradients(projected);
      });
  CHECK(failures > 0);
  estimated<Estimator> reference(estimator, 1, 0);
  reference.p.begin_reference_pass();
  t::feed_all(reference.p, reference.ids, e.blocks);
  reference.p.finish_reference_pass();
  e.check_bases(t::bases_of(reference.p, reference.ids));
}

}  // namespace

extern "C" void* __libc_malloc(std::size_t bytes);
extern "C" void* malloc(std::size_t bytes) {
  if (allocations_left.load(std::memory_order_relaxed) >= 0 && counted_caller(__builtin_return_address(0)) &&
      fail_this(bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return __libc_malloc(bytes);
}

TEST_CASE("a projection out of memory throws bad_alloc and changes nothing, on 1, 2 or 3 threads") {
  // 48 directions: the packing of Eigen's GEMM for the right block's update outgrows the stack
  // (Eigen would take it from the heap, in the team).
  for (const int threads : {1, 2, 3}) check_projection(ogpsa::exact_svd{.rank = 48}, threads);
}

namespace {

/// E as the reference-pass sweeps run it: rank 4, randomized_svd with one power iteration (the
/// sweep fails each allocation of a pass once, so it grows with the products a pass makes) and
/// frequent_directions with blocks of 16 columns (several sketch updates from the 64 columns fed).
template <class E>
E swept() {
  E e = t::with_rank<E>(4);
  if constexpr (std::is_same_v<E, ogpsa::randomized_svd>) e.power_iterations = 1;
  if constexpr (std::is_same_v<E, ogpsa::frequent_directions>) e.block = 16;
  return e;
}

}  // namespace

TEST_CASE_TEMPLATE_DEFINE(
    "a reference pass out of memory throws bad_alloc and keeps every basis, on 1, 2 or 3 threads", E,
    pass_out_of_memory) {
  for (const int threads : {1, 2, 3}) check_reference_pass(swept<E>(), threads);
}
TEST_CASE_TEMPLATE_APPLY(pass_out_of_memory, ogpsa::estimators);
