// The peak heap memory of each estimator's reference pass (feeding every snapshot, then the
// estimate), measured by the counting allocator of heap_counter.hpp and checked against the
// formula each estimator documents. w = 4 bytes (float snapshots and basis); d rows, m snapshots,
// k the rank, l the sketch width. `slack` covers what no formula names: the backend's panel
// buffers (a few MiB per thread) and the small host matrices (m x m, l x l).

#include <barrier>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/cpu/backend.hpp>
#include <ogpsa/estimators/exact_svd.hpp>
#include <ogpsa/estimators/frequent_directions.hpp>
#include <ogpsa/estimators/randomized_svd.hpp>
#include <ogpsa/estimators/single_pass_svd.hpp>
#include <ogpsa/ogpsa.hpp>

#include "heap_counter.hpp"
#include "support.hpp"
#include "thread_reducer.hpp"

namespace t = ogpsa::test;
namespace heap = ogpsa::test::heap;
using ogpsa::index_t;

namespace {

constexpr std::int64_t w = sizeof(float), mib = std::int64_t{1} << 20;
constexpr int threads = 2;
constexpr std::int64_t slack = 3 * mib * threads + mib;

struct measured {
  std::int64_t peak = 0;
  std::vector<double> strengths;
};

/// Runs one pass of `e` over the columns of `data`, `per_feed` at a time, read where they lie.
template <class Estimator, class S, class Work = float>
measured measure(const Estimator& e, const t::matrix<S>& data, index_t per_feed) {
  using pass = typename Estimator::template pass<ogpsa::cpu::backend, Work>;
  ogpsa::cpu::execution exec{.threads = threads};
  measured out;
  const heap::peak_scope scope;
  {
    pass s(e, data.rows(), "w");
    for (index_t j = 0; j < data.cols(); j += per_feed) {
      const index_t n = std::min(per_feed, data.cols() - j);
      s.feed(exec,
             ogpsa::detail::matrix_ref<const S, ogpsa::host_memory_tag>{data.data() + j * data.rows(),
                                                                        data.rows(), n, 1, data.rows()},
             0);
    }
    const auto sub = s.finish(exec);
    out.strengths = sub.strengths;
  }
  out.peak = scope.bytes();
  return out;
}

/// d x m data of rank r with singular values proportional to `strengths`.
template <class S>
t::matrix<S> low_rank(index_t d, index_t m, const std::vector<double>& strengths, std::uint32_t seed) {
  const index_t r = static_cast<index_t>(strengths.size());
  const t::vector<double> s = Eigen::Map<const t::vector<double>>(strengths.data(), r);
  const t::matrix<double> left = t::random_matrix<double>(d, r, seed),
                          right = t::random_matrix<double>(r, m, seed + 1);
  return (left * s.asDiagonal() * right).template cast<S>();
}

/// Whether the exact estimator's Gram route declines these strengths (the QR route runs).
bool takes_qr_route(const measured& r) {
  const double ratio = r.strengths.back() / r.strengths.front();
  return ratio * ratio < std::sqrt(std::numeric_limits<double>::epsilon());
}

void report(const std::string& name, const measured& r, std::int64_t bound, std::int64_t snapshots) {
  MESSAGE(name << ": peak " << static_cast<double>(r.peak) / mib << " MiB, bound "
               << static_cast<double>(bound) / mib << " MiB, snapshots "
               << static_cast<double>(snapshots) / mib << " MiB");
  CHECK(r.peak <= bound);
}

}  // namespace

TEST_CASE("exact_svd: tall data peaks at the snapshots plus the basis, on the Gram and the QR route" *
          doctest::skip(!heap::counting())) {
  constexpr index_t d = index_t{1} << 20, m = 16, k = 4;
  const std::int64_t bound = w * d * (m + k) + slack;
  const auto gram = measure(ogpsa::exact_svd{.rank = k}, t::random_matrix<float>(d, m, 1), 4);
  report("exact_svd tall, Gram route", gram, bound, w * d * m);
  const auto qr = measure(ogpsa::exact_svd{.rank = k}, low_rank<float>(d, m, {1, 1e-1, 1e-3, 1e-5}, 2), 4);
  REQUIRE(takes_qr_route(qr));
  report("exact_svd tall, QR route", qr, bound, w * d * m);
}

TEST_CASE("exact_svd: wide data peaks at the snapshots, the basis and the d x d host matrices" *
          doctest::skip(!heap::counting())) {
  constexpr index_t d = 1024, m = 16384, k = 4;
  const auto gram = measure(ogpsa::exact_svd{.rank = k}, t::random_matrix<float>(d, m, 3), 1024);
  report("exact_svd wide, Gram route", gram, w * d * (m + k) + 8 * (3 * d * d + 2048 * d) + slack, w * d * m);
  // In double: float's numerically zero directions (below min(d, m) eps_float s_1) would leave no
  // room for one weak enough to need the QR route.
  const auto qr = measure<ogpsa::exact_svd, double, double>(
      ogpsa::exact_svd{.rank = k}, low_rank<double>(d, m / 2, {1, 1e-1, 1e-3, 1e-5}, 4), 1024);
  REQUIRE(takes_qr_route(qr));
  report("exact_svd wide, QR route (double)", qr,
         2 * w * d * (m / 2 + k) + 8 * (3 * d * d + 2048 * d) + slack, 2 * w * d * m / 2);
}

TEST_CASE("randomized_svd peaks at the snapshots plus one d x l sample and the basis" *
          doctest::skip(!heap::counting())) {
  constexpr index_t d = index_t{1} << 20, m = 16, k = 4, p = 4;
  const auto r =
      measure(ogpsa::randomized_svd{.rank = k, .oversampling = p}, t::random_matrix<float>(d, m, 5), 4);
  report("randomized_svd", r, w * d * (m + k + p + k) + slack, w * d * m);
}

TEST_CASE(
    "single_pass_svd peaks at Omega, H, the column sum and one fed block, whatever the stream's length" *
    doctest::skip(!heap::counting())) {
  constexpr index_t d = index_t{1} << 20, k = 4, p = 4, l = k + p;
  const ogpsa::single_pass_svd e{.rank = k, .oversampling = p};
  report("single_pass_svd, one column per feed", measure(e, t::random_matrix<float>(d, 32, 6), 1),
         w * (2 * d * l + d + d) + slack, 0);
  report("single_pass_svd, 16 double columns per feed", measure(e, t::random_matrix<double>(d, 32, 7), 16),
         w * (2 * d * l + d + 16 * d) + slack, 0);
}

TEST_CASE("frequent_directions peaks at the sketch, the column sum and the buffer or the basis" *
          doctest::skip(!heap::counting())) {
  constexpr index_t d = index_t{1} << 20, k = 4, l = 8, b = 4;
  const ogpsa::frequent_directions e{.rank = k, .sketch_width = l, .block = b};
  report("frequent_directions, whole blocks read in place", measure(e, t::random_matrix<float>(d, 32, 8), b),
         w * d * (l + 1 + k) + slack, 0);
  report("frequent_directions, single columns through the buffer",
         measure(e, t::random_matrix<float>(d, 32, 9), 1), w * d * (l + 1 + std::max(b, k)) + slack, 0);
}

namespace {

/// The heap peak of `finish_reference_pass` for a `right` block of `out` x `in` gradients sharded by
/// rows across `ranks` ranks (threads, one execution thread each), fed 4 reference gradients: the
/// FSDP case, whose target columns are split. Counts every rank; the snapshots are fed before.
template <class Estimator>
std::int64_t sharded_refresh_peak(const Estimator& e, index_t out, index_t in, int ranks) {
  const index_t rows_per_rank = out / ranks;
  std::vector<std::vector<t::matrix<float>>> refs(static_cast<std::size_t>(ranks));
  for (int r = 0; r < ranks; ++r)
    for (std::uint32_t i = 0; i < 4; ++i)
      refs[static_cast<std::size_t>(r)].push_back(
          t::random_matrix<float>(rows_per_rank, in, static_cast<std::uint32_t>(100 * r) + i));
  std::vector<t::matrix<float>> grads(static_cast<std::size_t>(ranks),
                                      t::matrix<float>::Zero(rows_per_rank, in));
  std::barrier fed(ranks);
  std::optional<heap::peak_scope> scope;
  t::run_ranks(ranks, [&](t::thread_reducer& reducer) {
    ogpsa::projector<Estimator, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<float>,
                     t::thread_reducer>
        p(e, {}, {}, ogpsa::cpu::execution{.threads = 1}, reducer);
    const auto r = static_cast<std::size_t>(reducer.rank);
    const auto id = p.add_block("w", ogpsa::view(grads[r]), ogpsa::family::right, ogpsa::sharding::rows);
    p.begin_reference_pass();
    for (const auto& g : refs[r]) p.feed(id, ogpsa::view(g));
    fed.arrive_and_wait();
    if (r == 0) scope.emplace();
    fed.arrive_and_wait();
    p.finish_reference_pass();
  });
  return scope->bytes();
}

}  // namespace

TEST_CASE(
    "a sharded refresh of a right block sharded by rows: randomized_svd holds O(n l) per rank, exact_svd "
    "O(n^2)" *
    doctest::skip(!heap::counting())) {
  // Per rank and round: the values awaited, the packed copy of the round (run_rounds) and the test
  // reducer's staging copy of it (a real all-reduce sums in place): 3 x 8 bytes per value summed.
  constexpr int ranks = 2;
  {
    // n = 16384 input dimensions (the target space), 2 ranks of 16 rows, 4 references: 64 snapshot
    // columns per rank, 128 in all; k = 54, l = 64. Each round sums A A^T Q (n x l) beside Q
    // (w n l); at the end Q and the basis (w n k).
    constexpr index_t n = 16384, out = 32, k = 54, l = 64;
    const std::int64_t peak = sharded_refresh_peak(ogpsa::randomized_svd{.rank = k}, out, n, ranks);
    report("randomized_svd sharded refresh, n = 16384, l = 64, 2 ranks", {peak, {}},
           ranks * ((3 * 8 + w) * n * l + 2 * mib), 0);
  }
  {
    // n = 1024, 2 ranks of 256 rows: the round sums the n x n Gram matrix (and n + 1 values); its
    // eigen-decomposition then holds about three n x n matrices of doubles.
    constexpr index_t n = 1024, out = 512, k = 8;
    const std::int64_t peak = sharded_refresh_peak(ogpsa::exact_svd{.rank = k}, out, n, ranks);
    report("exact_svd sharded refresh, n = 1024, 2 ranks", {peak, {}},
           ranks * (3 * 8 * (n * n + n) + 2 * mib), 0);
    CHECK(peak >= ranks * 2 * 8 * n * n);  // at least the Gram matrix and its packed copy on each rank
  }
}
