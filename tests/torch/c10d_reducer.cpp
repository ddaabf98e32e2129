// The c10d reducer across real processes: each test case forks N ranks that meet through a c10d
// FileStore in a fresh temporary folder and talk Gloo over 127.0.0.1. A rank reports failure by
// its exit status (and its message on stderr); the parent bounds the whole run in time.

#include "doctest_after_glog.hpp"  // first: glog's CHECK must not replace doctest's

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <ogpsa/torch/c10d_reducer.hpp>

#include "sharded_case.hpp"

using ogpsa::family;
using ogpsa::sharding;
namespace t = ogpsa::test;
using namespace ogpsa::test::sharded;
using namespace std::chrono_literals;

namespace {

constexpr int died = 42;  // the exit status of a rank that dies on purpose

/// The c10d reducer, counting its collectives (a projection must take exactly one).
struct counting_reducer {
  static constexpr bool communicates = true;
  ogpsa::torch::c10d_reducer inner;
  std::shared_ptr<std::size_t> calls = std::make_shared<std::size_t>(0);

  ogpsa::rank_position position() const { return inner.position(); }
  template <class T>
  void sum(std::span<T> values) {
    ++*calls;
    inner.sum(values);
  }
};

void require(bool condition, const std::string& what) {
  if (!condition) throw std::runtime_error(what);
}

c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo_group(const std::string& store_file, int rank, int ranks) {
  auto store = c10::make_intrusive<c10d::FileStore>(store_file, ranks);
  auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(10s));
  options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, ranks, options);
}

/// Forks `ranks` processes running `body(rank, group)`; returns each rank's exit status (-1 for a
/// rank killed at the deadline). Children leave with _exit: no destructor of the parent's state,
/// nor the process group's (which may wait on dead peers), runs in them.
std::vector<int> run_processes(int ranks, std::chrono::seconds deadline,
                               const std::function<void(int, counting_reducer&)>& body) {
  char folder[] = "/tmp/ogpsa-c10d-XXXXXX";
  REQUIRE(::mkdtemp(folder) != nullptr);
  const std::string store_file = std::string(folder) + "/store";
  std::vector<pid_t> children;
  std::fflush(nullptr);  // else the children print the parent's buffered output again
  for (int rank = 0; rank < ranks; ++rank) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // As Python does: a write to a dead peer's socket then fails, and Gloo reports it, instead of
      // SIGPIPE killing this rank.
      std::signal(SIGPIPE, SIG_IGN);
      int status = 0;
      try {
        counting_reducer reducer{ogpsa::torch::c10d_reducer(gloo_group(store_file, rank, ranks), 10s)};
        body(rank, reducer);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
        status = 1;
      }
      std::fflush(nullptr);
      ::_exit(status);
    }
    children.push_back(pid);
  }
  std::vector<int> statuses(static_cast<std::size_t>(ranks), -1);
  const auto end = std::chrono::steady_clock::now() + deadline;
  for (std::size_t waiting = children.size(); waiting > 0 && std::chrono::steady_clock::now() < end;) {
    for (std::size_t r = 0; r < children.size(); ++r) {
      int status = 0;
      if (statuses[r] != -1 || ::waitpid(children[r], &status, WNOHANG) != children[r]) continue;
      statuses[r] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      --waiting;
    }
    std::this_thread::sleep_for(20ms);
  }
  for (std::size_t r = 0; r < children.size(); ++r)
    if (statuses[r] == -1) {  // hung past the deadline
      ::kill(children[r], SIGKILL);
      ::waitpid(children[r], nullptr, 0);
    }
  std::filesystem::remove_all(folder);
  return statuses;
}

/// One rank's sharded projection of every sharding that splits the target rows or columns, checked
/// against the single-process projection of the whole gradient, with one collective per call.
void sharded_projection(int rank, counting_reducer& reducer) {
  const int ranks = reducer.position().ranks;
  const ogpsa::exact_svd e{.rank = 3};
  const std::pair<family, sharding> shardings[] = {{family::flat, sharding::rows},   {family::flat, sharding::columns},
                                                 {family::left, sharding::rows},   {family::right, sharding::columns},
                                                 {family::left, sharding::columns}, {family::right, sharding::rows}};
  for (const auto& [f, s] : shardings) {
    const std::string label = std::string(ogpsa::to_string(f)) + " by " + std::string(ogpsa::to_string(s));
    const t::matrix<float> g = gradient();
    const t::matrix<float> expected = single_process(e, f, g);
    projector<ogpsa::exact_svd, counting_reducer> p(e, {}, {}, {}, reducer);
    t::matrix<float> mine = piece(g, s, rank, ranks);
    const auto id = p.add_block("w", ogpsa::view(mine), f, s);
    p.begin_reference_pass();
    for (const auto& r : references(f)) {
      const t::matrix<float> part = piece(r, s, rank, ranks);
      p.feed(id, ogpsa::view(part));
    }
    p.finish_reference_pass();
    const std::size_t before = *reducer.calls;
    p.project();
    const std::size_t collectives = ogpsa::split_of(f, s) == ogpsa::target_split::rows ? 1 : 0;
    require(*reducer.calls - before == collectives,
            label + ": " + std::to_string(*reducer.calls - before) + " collectives in one projection");
    const double error = (mine - piece(expected, s, rank, ranks)).cwiseAbs().maxCoeff();
    require(error < 1e-5, label + ": differs from the single-process projection by " + std::to_string(error));
  }
}

/// The last rank dies before the projection's all-reduce; the others must get a clear ogpsa error
/// within the Gloo timeout instead of hanging.
void dying_rank(int rank, counting_reducer& reducer) {
  const int ranks = reducer.position().ranks;
  t::matrix<float> mine = piece(gradient(), sharding::rows, rank, ranks);
  projector<ogpsa::exact_svd, counting_reducer> p(ogpsa::exact_svd{.rank = 3}, {}, {}, {}, reducer);
  const auto id = p.add_block("w", ogpsa::view(mine), family::left, sharding::rows);
  p.begin_reference_pass();
  for (const auto& r : references(family::left)) {
    const t::matrix<float> part = piece(r, sharding::rows, rank, ranks);
    p.feed(id, ogpsa::view(part));
  }
  p.finish_reference_pass();
  if (rank == ranks - 1) ::_exit(died);
  const auto start = std::chrono::steady_clock::now();
  try {
    p.project();
  } catch (const ogpsa::communication_error& e) {
    const std::string what = e.what();
    require(what.find("ogpsa::torch::c10d_reducer::sum") != std::string::npos, "unclear error: " + what);
    require(std::chrono::steady_clock::now() - start < 15s, "the error came after the timeout: " + what);
    return;
  }
  throw std::runtime_error("the projection succeeded although a rank had died");
}

void check_statuses(const std::vector<int>& statuses, int dead_rank = -1) {
  for (std::size_t r = 0; r < statuses.size(); ++r) {
    CAPTURE(r);
    CHECK(statuses[r] == (static_cast<int>(r) == dead_rank ? died : 0));
  }
}

}  // namespace

TEST_CASE("sharded projection over Gloo equals the single-process projection, one collective per call, 2 ranks") {
  check_statuses(run_processes(2, 60s, sharded_projection));
}

TEST_CASE("sharded projection over Gloo equals the single-process projection, one collective per call, 4 ranks") {
  check_statuses(run_processes(4, 60s, sharded_projection));
}

TEST_CASE("a rank dying mid-collective makes the others fail with communication_error, 2 ranks") {
  check_statuses(run_processes(2, 60s, dying_rank), 1);
}

TEST_CASE("a rank dying mid-collective makes the others fail with communication_error, 4 ranks") {
  check_statuses(run_processes(4, 60s, dying_rank), 3);
}

TEST_CASE("c10d_reducer rejects a null group and a non-positive timeout") {
  t::check_throws_with<ogpsa::invalid_argument>([] { ogpsa::torch::c10d_reducer r{c10::intrusive_ptr<c10d::ProcessGroup>()}; },
                                                {"ogpsa::torch::c10d_reducer", "null"});
  char folder[] = "/tmp/ogpsa-c10d-XXXXXX";
  REQUIRE(::mkdtemp(folder) != nullptr);
  {
    auto group = gloo_group(std::string(folder) + "/store", 0, 1);
    t::check_throws_with<ogpsa::invalid_argument>([&] { ogpsa::torch::c10d_reducer r(group, 0ms); },
                                                  {"ogpsa::torch::c10d_reducer", "timeout", "0 ms"});
    ogpsa::torch::c10d_reducer one(group);
    std::vector<double> values{1.5, -2};
    one.sum(std::span<double>(values));  // a group of one: the sum is the values
    CHECK(values == std::vector<double>{1.5, -2});
    CHECK(one.position().rank == 0);
    CHECK(one.position().ranks == 1);
  }
  std::filesystem::remove_all(folder);
}
