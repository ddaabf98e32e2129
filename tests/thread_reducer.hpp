#pragma once
// An in-process reducer for tests: ranks are threads, sums go through shared memory. Each rank
// adds the slots of all ranks in rank order, so every rank gets bitwise the same sums, as with a
// real all-reduce. Lets the core tests check sharded projections and estimates without a network.

#include <barrier>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <thread>
#include <vector>

#include <ogpsa/reducer.hpp>

namespace ogpsa::test {

class thread_group {
 public:
  explicit thread_group(int ranks)
      : ranks_(ranks), sync_(ranks), slots_(static_cast<std::size_t>(ranks)) {}

  int ranks() const noexcept { return ranks_; }

  template <class T>
  void sum(int rank, std::span<T> values) {
    auto& mine = slots_[static_cast<std::size_t>(rank)];
    mine.assign(values.begin(), values.end());
    sync_.arrive_and_wait();
    for (const auto& other : slots_)
      if (other.size() != values.size()) throw std::logic_error("ranks summed buffers of different lengths");
    for (std::size_t i = 0; i < values.size(); ++i) {
      double total = 0;
      for (const auto& slot : slots_) total += slot[i];
      values[i] = static_cast<T>(total);
    }
    sync_.arrive_and_wait();  // nobody refills a slot before every rank has read it
    std::vector<double>().swap(mine);  // staging only: a real all-reduce keeps nothing after it
  }

 private:
  int ranks_;
  std::barrier<> sync_;
  std::vector<std::vector<double>> slots_;
};

/// One rank's reducer; `calls` counts its collectives and `values` the numbers they summed.
struct thread_reducer {
  static constexpr bool communicates = true;

  std::shared_ptr<thread_group> group;
  int rank = 0;
  std::shared_ptr<std::size_t> calls = std::make_shared<std::size_t>(0);
  std::shared_ptr<std::size_t> values = std::make_shared<std::size_t>(0);

  rank_position position() const noexcept { return {rank, group->ranks()}; }

  template <class T>
  void sum(std::span<T> part) {
    ++*calls;
    *values += part.size();
    group->sum(rank, part);
  }
};

/// Runs `body(reducer)` on `ranks` threads and rethrows the first exception. A rank that throws
/// while the others wait in a sum would hang them, so bodies must fail on every rank alike.
inline void run_ranks(int ranks, const std::function<void(thread_reducer&)>& body) {
  auto group = std::make_shared<thread_group>(ranks);
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      thread_reducer reducer{group, r};
      try {
        body(reducer);
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace ogpsa::test
