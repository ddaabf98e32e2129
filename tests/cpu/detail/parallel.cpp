#include <atomic>
#include <numeric>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/cpu/detail/parallel.hpp>

using ogpsa::index_t;
using ogpsa::cpu::detail::share;

namespace {

std::vector<index_t> running_totals(const std::vector<index_t>& weights) {
  std::vector<index_t> prefix(weights.size() + 1, 0);
  std::partial_sum(weights.begin(), weights.end(), prefix.begin() + 1);
  return prefix;
}

}  // namespace

TEST_CASE("share gives consecutive ranges that cover every item once, balanced by weight") {
  const std::vector<index_t> weights{5, 1, 1, 100, 3, 3, 3, 0, 40, 7, 7, 2, 60, 1};
  const auto prefix = running_totals(weights);
  const index_t largest = 100;
  for (int members : {1, 2, 3, 5, 16}) {
    CAPTURE(members);
    std::size_t next = 0;
    for (int m = 0; m < members; ++m) {
      const auto [first, last] = share(prefix, m, members);
      CHECK(first == next);
      CHECK(last >= first);
      const index_t weight = prefix[last] - prefix[first];
      CHECK(static_cast<double>(weight) < static_cast<double>(prefix.back()) / members + largest);
      next = last;
    }
    CHECK(next == weights.size());
  }
}

TEST_CASE("share of no items, or of items that weigh nothing, is well defined") {
  const std::vector<index_t> none{0};
  CHECK(share(none, 0, 2) == std::pair<std::size_t, std::size_t>{0, 0});
  CHECK(share(none, 1, 2) == std::pair<std::size_t, std::size_t>{0, 0});
  const auto zeros = running_totals({0, 0, 0});
  std::size_t covered = 0;
  for (int m = 0; m < 2; ++m) {
    const auto [first, last] = share(zeros, m, 2);
    covered += last - first;
  }
  CHECK(covered == 3);
}

TEST_CASE("run_team runs the body once per member, and run_phases runs the second phase after all of the first") {
  std::atomic<int> calls{0}, after{0};
  std::vector<int> seen(8, 0);
  int team = 0;
  ogpsa::cpu::detail::run_phases(
      4,
      [&](int member, int) {
        seen[static_cast<std::size_t>(member)] = 1;
        ++calls;
      },
      [&](int member, int members) {
        if (calls.load() == members) ++after;  // every member ran phase one before any goes on
        if (member == 0) team = members;
      });
  CHECK(team >= 1);
  CHECK(calls.load() == team);
  CHECK(after.load() == team);
  CHECK(std::accumulate(seen.begin(), seen.end(), 0) == team);
#if defined(_OPENMP)
  CHECK(team == 4);
#endif
}

namespace {

struct member_failure {
  int member;
};

}  // namespace

TEST_CASE("an exception in a member of a team leaves run_team as itself, on any number of threads") {
  for (const int threads : {1, 2, 3}) {
    CAPTURE(threads);
    std::atomic<int> finished{0};
    bool caught = false;
    try {
      ogpsa::cpu::detail::run_team(threads, [&](int member, int members) {
        if (member == members - 1) throw member_failure{member};
        ++finished;
      });
    } catch (const member_failure& e) {
      caught = true;
      CHECK(e.member == finished.load());  // the last member threw, once every other one was done
    }
    CHECK(caught);
  }
}

TEST_CASE("run_phases runs no second phase once the first threw on any member, on any number of threads") {
  for (const int threads : {1, 2, 3}) {
    CAPTURE(threads);
    std::atomic<int> second{0};
    bool caught = false;
    try {
      ogpsa::cpu::detail::run_phases(
          threads,
          [&](int member, int members) {
            if (member == members - 1) throw member_failure{member};
          },
          [&](int, int) { ++second; });
    } catch (const member_failure&) {
      caught = true;
    }
    CHECK(caught);
    CHECK(second.load() == 0);
  }
}
