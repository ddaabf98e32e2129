// Sharded blocks in one process: ranks are threads (tests/thread_reducer.hpp). The projection of
// every rank's piece must equal the same piece of the single-process projection, with one
// collective per projection call.

#include <cstdint>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/ogpsa.hpp>

#include "policies.hpp"
#include "sharded_case.hpp"
#include "support.hpp"
#include "thread_reducer.hpp"

using ogpsa::family;
using ogpsa::sharding;
namespace t = ogpsa::test;
using namespace ogpsa::test::sharded;

namespace {

/// Runs the same projection on `ranks` threads, each holding its piece; checks every piece against
/// the single-process result and that the projection took `collectives` sums.
template <class Estimator>
void check_sharded(Estimator e, family f, sharding s, int ranks, std::size_t collectives) {
  CAPTURE(f);
  CAPTURE(s);
  CAPTURE(ranks);
  const t::matrix<float> g = gradient();
  const t::matrix<float> expected = single_process(e, f, g);
  t::run_ranks(ranks, [&](t::thread_reducer& reducer) {
    projector<Estimator, t::thread_reducer> p(e, {}, {}, {}, reducer);
    t::matrix<float> mine = piece(g, s, reducer.rank, ranks);
    const auto id = p.add_block("w", ogpsa::view(mine), f, s);
    p.begin_reference_pass();
    for (const auto& r : references(f)) {
      const t::matrix<float> part = piece(r, s, reducer.rank, ranks);
      p.feed(id, ogpsa::view(part));
    }
    p.finish_reference_pass();
    const std::size_t before = *reducer.calls;
    p.project();
    CHECK(*p.reducer().calls - before == collectives);
    CHECK((mine - piece(expected, s, reducer.rank, ranks)).cwiseAbs().maxCoeff() < 1e-5);
  });
}

/// Whether the projector takes sharded blocks of E whose target space is split as `split`: E's
/// per-block pass can estimate while awaiting sums across ranks (`estimate`), and for split target
/// rows E does not declare `splits_target_rows = false`.
template <class E>
constexpr bool estimates_split(ogpsa::target_split split) {
  using pass = typename E::template pass<ogpsa::cpu::backend, float>;
  if constexpr (!requires(pass& st, ogpsa::cpu::execution& exec) { st.estimate(exec, ogpsa::target_shard{}); })
    return false;
  else if constexpr (requires { E::splits_target_rows; })
    return E::splits_target_rows || split != ogpsa::target_split::rows;
  else
    return true;
}

/// A family and a sharding of its blocks, with the collectives one projection then takes: one sum of
/// the packed coefficients where the target rows are split, none where the target columns are (each
/// rank holds whole target vectors).
struct sharding_case {
  family kind;
  sharding by;
  std::size_t collectives;
};
constexpr sharding_case every_sharding[] = {{family::flat, sharding::rows, 1},    {family::flat, sharding::columns, 1},
                                   {family::left, sharding::rows, 1},    {family::right, sharding::columns, 1},
                                   {family::left, sharding::columns, 0}, {family::right, sharding::rows, 0}};

/// What one refresh of a sharded block sums across ranks (the same on every rank).
struct refresh_cost {
  std::size_t rounds = 0;
  std::size_t values = 0;
  bool operator==(const refresh_cost&) const = default;
};

refresh_cost operator+(refresh_cost a, refresh_cost b) { return {a.rounds + b.rounds, a.values + b.values}; }

/// After the estimate of a block whose target rows are split, the ranks agree whether its basis
/// rows are finite everywhere: one more round, one value per such block.
constexpr refresh_cost finiteness_vote{1, 1};

std::ostream& operator<<(std::ostream& os, const refresh_cost& c) {
  return os << c.rounds << " rounds, " << c.values << " values";
}

/// The rounds and values of `finish_reference_pass` for one block of family f laid out as s, fed
/// `refs` (each rank its piece), on `ranks` ranks; checks that every rank counts the same.
template <class Estimator, class T>
refresh_cost sharded_refresh(Estimator e, family f, sharding s, int ranks, const std::vector<t::matrix<T>>& refs) {
  std::vector<refresh_cost> costs(static_cast<std::size_t>(ranks));
  t::run_ranks(ranks, [&](t::thread_reducer& reducer) {
    ogpsa::projector<Estimator, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<T>, t::thread_reducer> p(
        e, {}, {}, {}, reducer);
    t::matrix<T> mine = piece(refs.front(), s, reducer.rank, ranks);
    const auto id = p.add_block("w", ogpsa::view(mine), f, s);
    p.begin_reference_pass();
    for (const auto& r : refs) {
      const t::matrix<T> part = piece(r, s, reducer.rank, ranks);
      p.feed(id, ogpsa::view(part));
    }
    const std::size_t calls = *reducer.calls, values = *reducer.values;
    p.finish_reference_pass();
    costs[static_cast<std::size_t>(reducer.rank)] = {*reducer.calls - calls, *reducer.values - values};
  });
  for (const auto& c : costs) CHECK(c == costs.front());
  return costs.front();
}

/// exact_svd, except that from its second sharded estimate on, rank 1's rows of the basis come out
/// NaN: a non-finite estimate that only one rank can see.
struct nan_rows_on_rank_one {
  static constexpr const char* name = "nan_rows_on_rank_one";
  std::shared_ptr<int> estimates = std::make_shared<int>(0);  ///< sharded estimates so far, this rank

  void validate() const {}
  bool supports(family) const { return true; }

  template <class Backend, class Work>
  class pass {
   public:
    pass(const nan_rows_on_rank_one& e, ogpsa::index_t dimension, std::string block)
        : inner_(ogpsa::exact_svd{.rank = 2}, dimension, std::move(block)), estimates_(e.estimates) {}

    template <class Execution, class Columns>
    void feed(Execution& exec, const Columns& columns, ogpsa::index_t set) {
      inner_.feed(exec, columns, set);
    }
    template <class Execution>
    ogpsa::subspace<Work, Backend> finish(Execution& exec) {
      return inner_.finish(exec);
    }
    template <class Execution>
    ogpsa::detail::rounds<ogpsa::subspace<Work, Backend>> estimate(Execution& exec, ogpsa::target_shard shard) {
      auto sub = inner_.estimate(exec, shard);
      while (ogpsa::detail::advance(sub)) co_await ogpsa::detail::summed(sub.request());
      ogpsa::subspace<Work, Backend> s = sub.result();
      if (++*estimates_ > 1 && shard.position.rank == 1) s.basis(0, 0) = std::numeric_limits<Work>::quiet_NaN();
      co_return s;
    }

   private:
    ogpsa::exact_svd::pass<Backend, Work> inner_;
    std::shared_ptr<int> estimates_;
  };
};

}  // namespace

// Every sharding of every family E supports, on 2 and 4 ranks: the projector takes it and projects
// as one process does, or refuses it when the block is added, naming the estimator.
TEST_CASE_TEMPLATE_DEFINE(
    "sharded projections equal the single-process projection on every sharding the estimator takes", E,
    sharded_as_single_process) {
  const E e = t::with_rank<E>(3);
  for (const sharding_case& l : every_sharding) {
    if (!e.supports(l.kind)) continue;
    if (estimates_split<E>(ogpsa::split_of(l.kind, l.by))) {
      for (int ranks : {2, 4}) check_sharded(e, l.kind, l.by, ranks, l.collectives);
      continue;
    }
    CAPTURE(l.kind);
    CAPTURE(l.by);
    t::run_ranks(2, [&](t::thread_reducer& reducer) {
      projector<E, t::thread_reducer> p(e, {}, {}, {}, reducer);
      t::matrix<float> mine = piece(gradient(), l.by, reducer.rank, 2);
      t::check_throws_with<ogpsa::invalid_argument>([&] { p.add_block("w", ogpsa::view(mine), l.kind, l.by); },
                                                    {"ogpsa::projector::add_block", E::name, "'w'"});
    });
  }
}
TEST_CASE_TEMPLATE_APPLY(sharded_as_single_process, ogpsa::estimators);

TEST_CASE("sharded exact_svd takes the QR route (TSQR) on ill-conditioned data as one process does") {
  // Singular values 1, 1e-2 and 1e-5: (s_3 / s_1)^2 is below sqrt(eps), so both the Gram route of
  // split target rows and that of split target columns fall back to QR. In double, the weakest
  // direction is then still exact to ~1e-11.
  using double_projector = ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps,
                                            ogpsa::storage<double>, t::thread_reducer>;
  const auto references = [](family f) {
    const Eigen::Index d = f == family::flat ? rows * cols : rows, n = f == family::flat ? 1 : cols;
    const t::matrix<double> q = t::random_orthonormal<double>(d, 3, 11);
    const Eigen::Vector3d strengths(1, 1e-2, 1e-5);
    std::vector<t::matrix<double>> out;
    for (std::uint32_t i = 0; i < 4; ++i)
      out.push_back((q * strengths.asDiagonal() * t::random_matrix<double>(3, n, 30 + i)).reshaped(rows, cols));
    return out;
  };
  const t::matrix<double> g = t::random_matrix<double>(rows, cols, 5);
  // flat by rows: split target rows (TSQR of the stacked R factors); left by columns: split
  // target columns (the summed A A^T, then TSQR of A^T).
  const std::size_t m = 4, d = rows;  // flat: 4 snapshots (an m x m Gram matrix); left: d = 24 target rows
  const std::pair<family, sharding> shardings[] = {{family::flat, sharding::rows}, {family::left, sharding::columns}};
  // Two rounds each: the Gram matrix (and d, or the column sum and m), then the TSQR stack of the
  // ranks' R factors, one slot per rank (m x m, or d x d: R of the transposed data).
  const refresh_cost costs[] = {refresh_cost{2, m * m + 1 + 2 * m * m} + finiteness_vote,
                                {2, d * d + d + 1 + 2 * d * d}};
  for (std::size_t c = 0; c < 2; ++c) {
    const auto [f, s] = shardings[c];
    CAPTURE(f);
    CHECK(sharded_refresh(ogpsa::exact_svd{.rank = 3}, f, s, 2, references(f)) == costs[c]);
    t::matrix<double> expected = g;
    ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<double>> one(
        ogpsa::exact_svd{.rank = 3});
    const auto id = one.add_block("w", ogpsa::view(expected), f);
    one.begin_reference_pass();
    for (const auto& r : references(f)) one.feed(id, ogpsa::view(r));
    one.finish_reference_pass();
    one.project();
    REQUIRE(one.subspace_of(id)->rank() == 3);
    t::run_ranks(2, [&](t::thread_reducer& reducer) {
      double_projector p(ogpsa::exact_svd{.rank = 3}, {}, {}, {}, reducer);
      t::matrix<double> mine = piece(g, s, reducer.rank, 2);
      const auto block = p.add_block("w", ogpsa::view(mine), f, s);
      p.begin_reference_pass();
      for (const auto& r : references(f)) {
        const t::matrix<double> part = piece(r, s, reducer.rank, 2);
        p.feed(block, ogpsa::view(part));
      }
      p.finish_reference_pass();
      p.project();
      CHECK(p.subspace_of(block)->rank() == 3);
      CHECK((mine - piece(expected, s, reducer.rank, 2)).cwiseAbs().maxCoeff() < 1e-9);
    });
  }
}

TEST_CASE("many sharded and replicated blocks share one collective per projection") {
  t::run_ranks(3, [](t::thread_reducer& reducer) {
    projector<ogpsa::exact_svd, t::thread_reducer> p(ogpsa::exact_svd{.rank = 2}, {}, {}, {}, reducer);
    t::matrix<float> a = t::random_matrix<float>(8, 6, 1), b = t::random_matrix<float>(5, 4, 2),
                     c = t::random_matrix<float>(7, 3, 3);
    const auto ia = p.add_block("a", ogpsa::view(a), family::flat, sharding::rows);
    const auto ib = p.add_block("b", ogpsa::view(b), family::left, sharding::rows);
    const auto ic = p.add_block("c", ogpsa::view(c), family::right);  // replicated
    CHECK(p.sharding_of(ia) == sharding::rows);
    CHECK(p.sharding_of(ic) == sharding::replicated);
    p.begin_reference_pass();
    for (std::uint32_t i = 0; i < 3; ++i) {
      const t::matrix<float> ra = t::random_matrix<float>(8, 6, 10 + i), rb = t::random_matrix<float>(5, 4, 20 + i),
                             rc = t::random_matrix<float>(7, 3, 30 + i);
      p.feed(ia, ogpsa::view(ra));
      p.feed(ib, ogpsa::view(rb));
      p.feed(ic, ogpsa::view(rc));
    }
    const std::size_t before_pass = *reducer.calls;
    p.finish_reference_pass();
    // exact_svd's sharded Gram route: two rounds (the Gram matrices, then U^T U), all blocks' at once,
    // then one for the ranks to agree that both split blocks' bases are finite.
    CHECK(*reducer.calls - before_pass == 3);
    for (int step = 0; step < 3; ++step) {
      const std::size_t before = *reducer.calls;
      p.project();
      CHECK(*reducer.calls - before == 1);
    }
    // A subset, as the torch wrapper's update placement projects: still one collective, no step.
    const std::vector<ogpsa::block_id> some{ib, ic, ia};
    const std::size_t before = *reducer.calls, steps = p.steps();
    p.project_blocks(std::span<const ogpsa::block_id>(some));
    CHECK(*reducer.calls - before == 1);
    CHECK(p.steps() == steps);
  });
}

TEST_CASE("a projector of only replicated blocks never communicates") {
  t::run_ranks(2, [](t::thread_reducer& reducer) {
    projector<ogpsa::exact_svd, t::thread_reducer> p(ogpsa::exact_svd{.rank = 2}, {}, {}, {}, reducer);
    t::matrix<float> g = t::random_matrix<float>(6, 5, 1);
    const auto id = p.add_block("w", ogpsa::view(g), family::left);
    p.begin_reference_pass();
    const t::matrix<float> r = t::random_matrix<float>(6, 5, 2);
    p.feed(id, ogpsa::view(r));
    p.finish_reference_pass();
    p.project();
    CHECK(*reducer.calls == 0);
  });
}

TEST_CASE("sharded blocks need a distributed reducer and an estimator that can split its estimate") {
  t::matrix<float> g = t::random_matrix<float>(6, 5, 1);
  projector<ogpsa::exact_svd, ogpsa::local_reducer> local;
  t::check_throws_with<ogpsa::invalid_argument>(
      [&] { local.add_block("w", ogpsa::view(g), family::left, sharding::rows); },
      {"ogpsa::projector::add_block", "'w'", "rows", "local"});
  t::run_ranks(1, [&](t::thread_reducer& reducer) {
    projector<ogpsa::single_pass_svd, t::thread_reducer> p({}, {}, {}, {}, reducer);
    t::check_throws_with<ogpsa::invalid_argument>(
        [&] { p.add_block("w", ogpsa::view(g), family::left, sharding::columns); },
        {"ogpsa::projector::add_block", "single_pass_svd", "'w'", "columns"});
  });
}

TEST_CASE("split_of maps each family and sharding to the target-space split") {
  using ogpsa::split_of;
  using ogpsa::target_split;
  CHECK(split_of(family::flat, sharding::replicated) == target_split::none);
  CHECK(split_of(family::flat, sharding::columns) == target_split::rows);
  CHECK(split_of(family::left, sharding::rows) == target_split::rows);
  CHECK(split_of(family::left, sharding::columns) == target_split::columns);
  CHECK(split_of(family::right, sharding::rows) == target_split::columns);
  CHECK(split_of(family::right, sharding::columns) == target_split::rows);
}

TEST_CASE("sharded frequent_directions merges the ranks' sketches: every rank ends with the same basis") {
  const ogpsa::frequent_directions e{.rank = 3};
  for (int ranks : {2, 4}) {
    CAPTURE(ranks);
    t::matrix<float> whole = gradient();
    projector<ogpsa::frequent_directions, ogpsa::local_reducer> single(e);
    const auto sid = single.add_block("w", ogpsa::view(whole), family::left);
    single.begin_reference_pass();
    for (const auto& r : references(family::left)) single.feed(sid, ogpsa::view(r));
    single.finish_reference_pass();
    const t::matrix<double> expected = single.subspace_of(sid)->basis.cast<double>();
    std::vector<t::matrix<float>> bases(static_cast<std::size_t>(ranks));
    t::run_ranks(ranks, [&](t::thread_reducer& reducer) {
      projector<ogpsa::frequent_directions, t::thread_reducer> p(e, {}, {}, {}, reducer);
      t::matrix<float> mine = piece(gradient(), sharding::columns, reducer.rank, ranks);
      const auto id = p.add_block("w", ogpsa::view(mine), family::left, sharding::columns);
      p.begin_reference_pass();
      for (const auto& r : references(family::left)) {
        const t::matrix<float> part = piece(r, sharding::columns, reducer.rank, ranks);
        p.feed(id, ogpsa::view(part));
      }
      p.finish_reference_pass();
      bases[static_cast<std::size_t>(reducer.rank)] = p.subspace_of(id)->basis;
    });
    for (const auto& b : bases) CHECK(t::same_bits(b, bases[0]));
    // Frequent Directions is approximate: merged and streamed sketches agree within its bound.
    CHECK(t::max_principal_sine(bases[0].cast<double>(), expected) < 1e-2);
  }
}

TEST_CASE("frequent_directions refuses blocks whose target rows are split") {
  t::run_ranks(1, [](t::thread_reducer& reducer) {
    projector<ogpsa::frequent_directions, t::thread_reducer> p({}, {}, {}, {}, reducer);
    t::matrix<float> g = t::random_matrix<float>(6, 5, 1);
    t::check_throws_with<ogpsa::invalid_argument>(
        [&] { p.add_block("w", ogpsa::view(g), family::left, sharding::rows); },
        {"ogpsa::projector::add_block", "frequent_directions", "'w'", "splits its target rows"});
  });
}

TEST_CASE("a sharded refresh sums what the documented formulas say") {
  // d target rows, m snapshots, k = 3, l = k + p = 13, q = 2 power iterations, on 2 ranks.
  constexpr std::size_t l = 13, q = 2, ranks = 2;
  const ogpsa::randomized_svd randomized{.rank = 3};
  {
    // right, sharded by rows (FSDP): the target columns are split; d = 20 (G's columns), m = 96.
    constexpr std::size_t d = cols;
    CHECK(sharded_refresh(randomized, family::right, sharding::rows, ranks, references(family::right)) ==
          refresh_cost{q + 3, 2 + (q + 1) * d * l + l * l + l});
    CHECK(sharded_refresh(ogpsa::exact_svd{.rank = 3}, family::right, sharding::rows, ranks,
                          references(family::right)) == refresh_cost{1, d * d + d + 1});
  }
  {
    // left, sharded by rows: the target rows are split; d = 24, m = 80. CholeskyQR2 twice per Q.
    constexpr std::size_t m = 4 * cols;
    CHECK(sharded_refresh(randomized, family::left, sharding::rows, ranks, references(family::left)) ==
          refresh_cost{3 * q + 4, 2 + (q + 1) * (2 * l * l + m * l)} + finiteness_vote);
    CHECK(sharded_refresh(ogpsa::exact_svd{.rank = 3}, family::left, sharding::rows, ranks, references(family::left)) ==
          refresh_cost{2, m * m + 1 + 3 * 3} + finiteness_vote);
    // Data of rank 2 < l: every Cholesky-QR declines and TSQR takes its place (one l x l slot per
    // rank in the same round), so the rounds stay 3q + 4.
    std::vector<t::matrix<float>> low;
    for (std::uint32_t i = 0; i < 4; ++i)
      low.push_back((t::random_matrix<double>(rows, 2, 40) * t::random_matrix<double>(2, cols, 41 + i)).cast<float>());
    CHECK(sharded_refresh(randomized, family::left, sharding::rows, ranks, low) ==
          refresh_cost{3 * q + 4, 2 + (q + 1) * ((1 + ranks) * l * l + m * l)} + finiteness_vote);
  }
}

TEST_CASE("a basis non-finite on one rank rejects the pass on every rank, and every rank keeps its bases") {
  t::run_ranks(2, [](t::thread_reducer& reducer) {
    projector<nan_rows_on_rank_one, t::thread_reducer> p(nan_rows_on_rank_one{}, {}, {}, {}, reducer);
    t::matrix<float> mine = piece(gradient(), sharding::rows, reducer.rank, 2);
    const auto id = p.add_block("w", ogpsa::view(mine), family::flat, sharding::rows);
    const auto pass = [&] {
      p.begin_reference_pass();
      for (const auto& r : references(family::flat)) {
        const t::matrix<float> part = piece(r, sharding::rows, reducer.rank, 2);
        p.feed(id, ogpsa::view(part));
      }
      p.finish_reference_pass();
    };
    pass();
    const t::matrix<float> basis = p.subspace_of(id)->basis;
    const std::size_t refreshes = p.refreshes();
    CHECK_THROWS_WITH_AS(pass(), doctest::Contains("NaN or Inf in its basis on 1 of 2 ranks"), ogpsa::numeric_error);
    CHECK(t::same_bits(p.subspace_of(id)->basis, basis));
    CHECK(p.refreshes() == refreshes);
  });
}
