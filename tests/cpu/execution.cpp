#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/ogpsa.hpp>

#include "support.hpp"

namespace t = ogpsa::test;

namespace {

/// The threads that ran a rule's `apply`, which a projection calls once per column from its team.
struct thread_log {
  std::mutex lock;
  std::set<std::thread::id> seen;
};

/// The orthogonal rule, noting every thread that applies it.
struct logging_rule {
  static constexpr const char* name = "logging";
  thread_log* log = nullptr;

  void validate() const noexcept {}
  constexpr bool supports(ogpsa::family) const noexcept { return true; }
  constexpr bool scales_gradient() const noexcept { return false; }

  template <class T>
  T apply(T* /*coefficients*/, ogpsa::index_t /*k*/) const noexcept {
    const std::lock_guard<std::mutex> hold(log->lock);
    log->seen.insert(std::this_thread::get_id());
    return T(1);
  }
};

/// The threads that applied the rule in one projection of 48 flat blocks of 64 Ki floats (36 MiB
/// of traffic: work for many threads) under `threads`.
std::set<std::thread::id> projection_threads(int threads) {
  thread_log log;
  ogpsa::projector<ogpsa::mean_gradient, logging_rule> p({}, logging_rule{&log}, {},
                                                         ogpsa::cpu::execution{.threads = threads});
  std::vector<t::matrix<float>> gradients;
  for (std::uint32_t i = 0; i < 48; ++i) gradients.push_back(t::random_matrix<float>(65536, 1, i));
  std::vector<ogpsa::block_id> ids;
  for (std::size_t i = 0; i < gradients.size(); ++i)
    ids.push_back(p.add_block("b" + std::to_string(i), ogpsa::view(gradients[i])));
  p.begin_reference_pass();
  for (std::size_t i = 0; i < gradients.size(); ++i) p.feed(ids[i], ogpsa::view(gradients[i]));
  p.finish_reference_pass();
  p.project();
  return log.seen;
}

}  // namespace

TEST_CASE("execution::threads caps the threads of a call, 0 takes OpenMP's default") {
  CHECK(ogpsa::cpu::max_threads({.threads = 0}) >= 1);
#if defined(_OPENMP)
  CHECK(ogpsa::cpu::max_threads({.threads = 3}) == 3);
  CHECK(ogpsa::cpu::max_threads({}) == omp_get_max_threads());
#else
  CHECK(ogpsa::cpu::max_threads({.threads = 3}) == 1);  // without OpenMP: the calling thread only
#endif
}

// What a whole call does with the setting, every estimator included and Eigen's own threads
// counted, is tested by the program `execution_limit.cpp`, which counts the process's threads.
TEST_CASE("a projection with execution::threads = n runs on n threads, 1 on the calling thread") {
  CHECK(projection_threads(1) == std::set<std::thread::id>{std::this_thread::get_id()});
#if defined(_OPENMP)
  CHECK(projection_threads(3).size() == 3);  // more than OpenMP's default on a 2-core machine, too
#else
  CHECK(projection_threads(3).size() == 1);
#endif
}

TEST_CASE("a negative thread count is a clear error") {
  t::check_throws_with<ogpsa::invalid_argument>([] { (void)ogpsa::cpu::max_threads({.threads = -2}); },
                                                {"ogpsa::cpu::max_threads()", "threads", "-2"});
}
