#pragma once
/// \file
/// Computations that need sums across ranks part-way through (the estimate of a sharded block:
/// partial Gram matrices, norms, dot products), written as straight-line coroutines and driven
/// many at once, so that a whole model's blocks share one collective per round.
///
///     detail::rounds<double> squared_norm(const std::vector<double>& local_part) {
///       double s = 0;
///       for (double x : local_part) s += x * x;
///       co_await detail::summed(std::span(&s, 1));  // s is now the sum over all ranks
///       co_return s;
///     }
///
/// `run_rounds(tasks, reducer)` resumes every task until each waits for a sum or is done, packs
/// all requested values into one buffer, sums it with one `reducer.sum` call and repeats;
/// `run_locally(task)` is the one-process case, where every sum is the value itself. Ranks must
/// request the same lengths in the same order, so what a task requests may depend only on
/// quantities that are the same on every rank (sums already received, snapshot counts, ranks).
/// A task runs a sub-computation's rounds as its own by forwarding its requests:
///
///     detail::rounds<matrix> sub = orthonormalize(...);
///     while (detail::advance(sub)) co_await detail::summed(sub.request());
///     matrix q = sub.result();

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace ogpsa::detail {

/// What a task awaits: every part is replaced by its sum across ranks before the task resumes.
struct summed {
  // Variadic rather than an initializer list: GCC 12 rejects a braced array temporary inside a
  // co_await expression.
  template <class... Parts>
  explicit summed(Parts... ps) {
    (parts.push_back(std::span<double>(ps)), ...);
  }
  /// A sub-computation's request, forwarded.
  explicit summed(std::vector<std::span<double>> ps) : parts(std::move(ps)) {}
  std::vector<std::span<double>> parts;
};

/// A coroutine that produces a `Result` after zero or more rounds of sums across ranks.
template <class Result>
class rounds {
 public:
  struct promise_type {
    std::vector<std::span<double>> request;
    std::optional<Result> result;
    std::exception_ptr error;

    rounds get_return_object() { return rounds(handle::from_promise(*this)); }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_value(Result r) { result.emplace(std::move(r)); }
    void unhandled_exception() noexcept { error = std::current_exception(); }
    std::suspend_always await_transform(summed s) {
      request = std::move(s.parts);
      return {};
    }
  };

  rounds(rounds&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  rounds& operator=(rounds&& other) noexcept {
    std::swap(handle_, other.handle_);
    return *this;
  }
  rounds(const rounds&) = delete;
  rounds& operator=(const rounds&) = delete;
  ~rounds() {
    if (handle_) handle_.destroy();
  }

  bool done() const noexcept { return handle_.done(); }
  /// The parts to sum before the next `resume()`; meaningful while not done.
  const std::vector<std::span<double>>& request() const noexcept { return handle_.promise().request; }

  /// Runs to the next request or to the end; rethrows what the computation threw.
  void resume() {
    handle_.resume();
    if (handle_.promise().error) std::rethrow_exception(handle_.promise().error);
  }

  /// The result of a finished task (moved out).
  Result result() { return std::move(*handle_.promise().result); }

 private:
  using handle = std::coroutine_handle<promise_type>;
  explicit rounds(handle h) noexcept : handle_(h) {}
  handle handle_;
};

/// Runs `task` to its next request or to its end; whether it now waits for a sum.
template <class Result>
bool advance(rounds<Result>& task) {
  task.resume();
  return !task.done();
}

/// Runs `task` in one process: a sum over one rank is the value itself.
template <class Result>
Result run_locally(rounds<Result> task) {
  do task.resume();
  while (!task.done());
  return task.result();
}

/// Packs the requests of every waiting task (`length` values in all) into one buffer, sums it with
/// one `reducer.sum` call and copies the sums back. The buffer lives only through this call, so it
/// never adds to what the tasks hold when they resume.
template <class Result, class Reducer>
void sum_requests(std::vector<rounds<Result>>& tasks, std::size_t length, Reducer& reducer) {
  std::vector<double> packed;
  packed.reserve(length);
  for (const auto& t : tasks)
    if (!t.done())
      for (std::span<double> part : t.request()) packed.insert(packed.end(), part.begin(), part.end());
  reducer.sum(std::span<double>(packed));
  std::size_t at = 0;
  for (const auto& t : tasks)
    if (!t.done())
      for (std::span<double> part : t.request()) {
        std::copy_n(packed.begin() + static_cast<std::ptrdiff_t>(at), part.size(), part.begin());
        at += part.size();
      }
}

/// Runs every task to its end with one `reducer.sum` per round for all of them together (none for
/// a round whose requests are all empty). Returns the number of rounds.
template <class Result, class Reducer>
std::size_t run_rounds(std::vector<rounds<Result>>& tasks, Reducer& reducer) {
  for (auto& t : tasks) t.resume();
  for (std::size_t round = 0;; ++round) {
    bool waiting = false;
    std::size_t length = 0;
    for (const auto& t : tasks) {
      if (t.done()) continue;
      waiting = true;
      for (std::span<double> part : t.request()) length += part.size();
    }
    if (!waiting) return round;
    if (length > 0) sum_requests(tasks, length, reducer);  // equally long on every rank
    for (auto& t : tasks)
      if (!t.done()) t.resume();
  }
}

}  // namespace ogpsa::detail
