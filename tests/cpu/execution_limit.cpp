// A call never runs on more threads than its execution allows, whatever OpenMP's and Eigen's own
// defaults say. A program of its own: it counts the threads the process runs, by standing in for
// pthread_create (through which OpenMP starts every thread of its pool) and counting each thread
// from its start to its end. OpenMP keeps the threads of its last team alive between calls, so the
// cases run in a fixed order in one process: first the calls with one thread, in a process that has
// started no thread yet, then those with two.

#include <dlfcn.h>
#include <pthread.h>

#include <atomic>

#include <doctest/doctest.h>
#include <Eigen/Core>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include <ogpsa/ogpsa.hpp>

#include "policies.hpp"
#include "support.hpp"
#include "whole_pass.hpp"

namespace t = ogpsa::test;

namespace {

std::atomic<int> started_threads{0};  ///< threads alive besides the main thread
std::atomic<int> most_threads{0};     ///< the most alive at once since the last `reset_count`

struct counted_start {
  void* (*routine)(void*);
  void* argument;
};

/// Counts the calling thread out when it ends, however it ends (return or pthread_exit).
struct thread_end {
  ~thread_end() { --started_threads; }
};

void* run_counted(void* start) {
  const counted_start s = *static_cast<counted_start*>(start);
  delete static_cast<counted_start*>(start);
  thread_local const thread_end end;
  (void)end;
  return s.routine(s.argument);
}

/// Threads the process runs now, the main one included.
int threads_now() {
  return started_threads.load() + 1;
}

void reset_count() {
  most_threads = started_threads.load();
}

/// The most threads the process ran at once since `reset_count`, the main one included.
int most_threads_since_reset() {
  return most_threads.load() + 1;
}

/// OpenMP's and Eigen's defaults well above the limits the calls ask for.
void raise_defaults() {
#if defined(_OPENMP)
  omp_set_num_threads(8);
#endif
  Eigen::setNbThreads(8);
}

/// The most threads the process ran at once during one whole cycle (every block registered, one
/// reference pass, one projection) of each estimator, on at most `threads` threads each.
int most_threads_of_every_estimator(int threads) {
  reset_count();
  t::for_each_type<ogpsa::estimators>([&]<class E>() {
    const E estimator = t::on_wide_blocks<E>();
    t::whole_cycle(estimator, threads, t::wide_blocks(!estimator.supports(ogpsa::family::left)));
  });
  return most_threads_since_reset();
}

}  // namespace

extern "C" int pthread_create(pthread_t* thread, const pthread_attr_t* attributes, void* (*routine)(void*),
                              void* argument) {
  using create_fn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
  static const auto create = reinterpret_cast<create_fn>(dlsym(RTLD_NEXT, "pthread_create"));
  auto* start = new counted_start{routine, argument};
  const int alive = ++started_threads;
  for (int most = most_threads.load(); alive > most && !most_threads.compare_exchange_weak(most, alive);) {
  }
  const int status = create(thread, attributes, run_counted, start);
  if (status != 0) {
    --started_threads;
    delete start;
  }
  return status;
}

TEST_CASE("every call with execution::threads = 1 runs on the calling thread alone") {
  REQUIRE_MESSAGE(threads_now() == 1, "this case needs a process that has started no thread yet");
  raise_defaults();
  CHECK(most_threads_of_every_estimator(1) == 1);
}

TEST_CASE("every call with execution::threads = 2 runs on two threads at most") {
  raise_defaults();
  const int most = most_threads_of_every_estimator(2);
  CHECK(most <= 2);
#if defined(_OPENMP)
  CHECK(most == 2);  // the count sees OpenMP's threads: these calls do split their work
#endif
}
