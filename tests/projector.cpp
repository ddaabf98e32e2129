#include <limits>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/ogpsa.hpp>

#include "policies.hpp"
#include "support.hpp"

using ogpsa::family;
namespace t = ogpsa::test;

TEST_CASE_TEMPLATE("orthogonal projection properties on every family", T, float, double) {
  for (family f : {family::flat, family::left, family::right}) {
    CAPTURE(f);
    t::matrix<T> g = t::random_matrix<T>(60, 45, 80);
    ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<T>> p(
        ogpsa::exact_svd{.rank = 3});
    const auto id = p.add_block("w", ogpsa::view(g), f);
    p.begin_reference_pass();
    for (std::uint32_t s = 0; s < 3; ++s) {
      const t::matrix<T> reference = t::random_matrix<T>(60, 45, 90 + s);
      p.feed(id, ogpsa::view(reference));
    }
    p.finish_reference_pass();
    const t::matrix<T> before = g;
    p.project();
    const t::matrix<double> u = p.subspace_of(id)->basis.template cast<double>();
    const t::matrix<double> gd = g.template cast<double>(), bd = before.template cast<double>();
    const double scale = bd.cwiseAbs().maxCoeff();
    // U^T g_proj = 0 on the family's vectors.
    const t::matrix<double> coefficients = f == family::flat    ? t::matrix<double>(u.transpose() * gd.reshaped())
                                           : f == family::left  ? t::matrix<double>(u.transpose() * gd)
                                                                : t::matrix<double>(gd * u);
    CHECK(coefficients.cwiseAbs().maxCoeff() < 100 * t::tolerance<T>() * scale);
    // Still a descent direction: g^T g_proj = |g_proj|^2 >= 0.
    const double inner = (bd.array() * gd.array()).sum();
    CHECK(inner >= 0);
    CHECK(inner == doctest::Approx(gd.squaredNorm()).epsilon(100 * t::tolerance<T>()));
    // Idempotent.
    const t::matrix<T> once = g;
    p.project();
    CHECK((g - once).cwiseAbs().maxCoeff() < 100 * t::tolerance<T>() * scale);
  }
}

TEST_CASE_TEMPLATE("soft projection interpolates between identity and orthogonal", T, float, double) {
  const t::matrix<T> ref = t::random_matrix<T>(300, 4, 100);
  const t::matrix<T> g0 = t::random_matrix<T>(300, 1, 101);
  auto run = [&](auto rule) {
    t::matrix<T> g = g0;
    ogpsa::projector<ogpsa::exact_svd, decltype(rule), ogpsa::every_n_steps, ogpsa::storage<T>> p(
        ogpsa::exact_svd{.rank = 3}, rule);
    const auto id = p.add_block("w", ogpsa::view(g));
    p.begin_reference_pass();
    for (Eigen::Index j = 0; j < 4; ++j) p.feed(id, ogpsa::view(ref.middleCols(j, 1)));
    p.finish_reference_pass();
    p.project();
    return g;
  };
  CHECK(run(ogpsa::soft{.alpha = 0.0}) == g0);
  const t::matrix<T> full = run(ogpsa::orthogonal{});
  CHECK((run(ogpsa::soft{.alpha = 1.0}) - full).cwiseAbs().maxCoeff() == 0);
  const t::matrix<T> half = run(ogpsa::soft{.alpha = 0.5});
  CHECK((half - (g0 + full) / T(2)).cwiseAbs().maxCoeff() < 10 * t::tolerance<T>());
}

TEST_CASE("feeding reference gradients never touches the registered gradient buffers") {
  std::vector<float> grad(100, 1.0f), ref(100);
  for (std::size_t i = 0; i < ref.size(); ++i) ref[i] = static_cast<float>(i % 7) - 3.0f;
  ogpsa::published_projector p;
  const auto id = p.add_block("w", ogpsa::view(grad));
  p.begin_reference_pass();
  p.feed(id, ogpsa::view(std::as_const(ref)));
  p.finish_reference_pass();
  CHECK(std::all_of(grad.begin(), grad.end(), [](float x) { return x == 1.0f; }));
}

TEST_CASE("refresh_due follows the schedule and counts projections as steps") {
  std::vector<float> grad(10, 1.0f), ref(10, 2.0f);
  ogpsa::published_projector p({}, {}, ogpsa::every_n_steps{.n = 2});
  const auto id = p.add_block("w", ogpsa::view(grad));
  CHECK(p.refresh_due());  // no subspace yet
  p.begin_reference_pass();
  p.feed(id, ogpsa::view(std::as_const(ref)));
  p.finish_reference_pass();
  CHECK_FALSE(p.refresh_due());
  p.project();
  CHECK_FALSE(p.refresh_due());
  p.project();
  CHECK(p.refresh_due());
  CHECK(p.steps() == 2);
  CHECK(p.refreshes() == 1);
}

TEST_CASE("bad inputs are clear errors") {
  std::vector<float> grad(12, 1.0f), ref(12, 1.0f);
  ogpsa::published_projector p;
  const auto id = p.add_block("layer.0.weight", ogpsa::view(grad.data(), 3, 4));

  SUBCASE("duplicate block name") {
    std::vector<float> other(4);
    t::check_throws_with<ogpsa::invalid_argument>([&] { p.add_block("layer.0.weight", ogpsa::view(other)); },
                                                  {"ogpsa::projector::add_block()", "duplicate", "'layer.0.weight'"});
  }
  SUBCASE("a family the estimator does not support") {
    std::vector<float> other(4);
    t::check_throws_with<ogpsa::invalid_argument>([&] { p.add_block("m", ogpsa::view(other.data(), 2, 2), family::left); },
                                                  {"mean_gradient", "left", "'m'"});
  }
  SUBCASE("projecting before any reference pass") {
    t::check_throws_with<ogpsa::state_error>([&] { p.project(); },
                                             {"ogpsa::projector::project()", "'layer.0.weight'", "no subspace"});
  }
  SUBCASE("an empty reference pass") {
    p.begin_reference_pass();
    t::check_throws_with<ogpsa::state_error>([&] { p.finish_reference_pass(); }, {"empty reference pass"});
    CHECK_FALSE(p.reference_pass_active());
  }
  SUBCASE("feeding outside a pass") {
    t::check_throws_with<ogpsa::state_error>([&] { p.feed(id, ogpsa::view(std::as_const(ref).data(), 3, 4)); },
                                             {"begin_reference_pass"});
  }
  SUBCASE("a gradient whose shape differs from the registered block") {
    p.begin_reference_pass();
    t::check_throws_with<ogpsa::shape_error>([&] { p.feed(id, ogpsa::view(std::as_const(ref).data(), 4, 3)); },
                                             {"ogpsa::projector::feed()", "'layer.0.weight'", "[3, 4]", "[4, 3]"});
    std::vector<float> wrong(12);
    t::check_throws_with<ogpsa::shape_error>([&] { p.project(id, ogpsa::view(wrong)); }, {"[3, 4]", "[12]"});
  }
  SUBCASE("a non-contiguous view for a flat block") {
    std::vector<float> big(40);
    t::check_throws_with<ogpsa::layout_error>(
        [&] { p.add_block("padded", ogpsa::matrix_view<float>(big.data(), {3, 4}, {8, 1})); },
        {"ogpsa::projector::add_block()", "contiguous"});
  }
  SUBCASE("an unknown block id") {
    t::check_throws_with<ogpsa::invalid_argument>([&] { (void)p.name(ogpsa::block_id{7}); }, {"index 7"});
  }
  SUBCASE("a block left out of a pass") {
    std::vector<float> g2(5);
    p.add_block("second", ogpsa::view(g2));
    p.begin_reference_pass();
    p.feed(id, ogpsa::view(std::as_const(ref).data(), 3, 4));
    t::check_throws_with<ogpsa::state_error>([&] { p.finish_reference_pass(); },
                                             {"'second'", "received no reference gradient", "1 of 2"});
  }
}

TEST_CASE("a NaN or Inf reference gradient rejects the pass and keeps the previous basis") {
  std::vector<double> grad(50), ref(50);
  for (std::size_t i = 0; i < 50; ++i) ref[i] = std::sin(static_cast<double>(i));
  ogpsa::projector<ogpsa::mean_gradient, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<double>> p;
  const auto id = p.add_block("w", ogpsa::view(grad));
  p.begin_reference_pass();
  p.feed(id, ogpsa::view(std::as_const(ref)));
  p.finish_reference_pass();
  const t::matrix<double> before = p.subspace_of(id)->basis;

  for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    std::vector<double> poisoned = ref;
    poisoned[17] = bad;
    p.begin_reference_pass();
    t::check_throws_with<ogpsa::numeric_error>([&] { p.feed(id, ogpsa::view(std::as_const(poisoned))); },
                                               {"ogpsa::projector::feed()", "'w'", "NaN or Inf", "rejected"});
    CHECK_FALSE(p.reference_pass_active());
    CHECK(p.subspace_of(id)->basis == before);
  }
}

namespace {

/// exact_svd at rank 2 that refuses a block fed fewer than two references, as an estimator with a
/// minimum sample size would: its error comes from inside the estimate of one block.
struct at_least_two_references {
  static constexpr const char* name = "at_least_two_references";
  void validate() const {}
  bool supports(family) const { return true; }

  template <class Backend, class Work>
  class pass {
   public:
    pass(const at_least_two_references&, ogpsa::index_t dimension, std::string block)
        : inner_(ogpsa::exact_svd{.rank = 2}, dimension, block), block_(std::move(block)) {}

    template <class Execution, class Columns>
    void feed(Execution& exec, const Columns& columns, ogpsa::index_t set) {
      inner_.feed(exec, columns, set);
      ++fed_;
    }
    template <class Execution>
    ogpsa::subspace<Work, Backend> finish(Execution& exec) {
      OGPSA_REQUIRE(fed_ >= 2, invalid_argument, "at_least_two_references::finish",
                    "block '" << block_ << "' was fed " << fed_ << " reference");
      return inner_.finish(exec);
    }

   private:
    ogpsa::exact_svd::pass<Backend, Work> inner_;
    std::string block_;
    int fed_ = 0;
  };
};

}  // namespace

TEST_CASE("an estimator error leaves every block's basis as it was") {
  std::vector<double> a(40), b(40);
  ogpsa::projector<at_least_two_references, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<double>> p;
  const auto ia = p.add_block("a", ogpsa::view(a)), ib = p.add_block("b", ogpsa::view(b));
  const auto pass = [&](std::uint32_t seed, int b_snapshots) {
    p.begin_reference_pass();
    for (std::uint32_t s = 0; s < 3; ++s) {
      const t::vector<double> r = t::random_matrix<double>(40, 1, seed + s);
      p.feed(ia, ogpsa::view(r));
    }
    for (int s = 0; s < b_snapshots; ++s) {
      const t::vector<double> r = t::random_matrix<double>(40, 1, seed + 10 + static_cast<std::uint32_t>(s));
      p.feed(ib, ogpsa::view(r));
    }
    p.finish_reference_pass();
  };
  pass(1, 3);
  p.project();
  const t::matrix<double> before_a = p.subspace_of(ia)->basis, before_b = p.subspace_of(ib)->basis;
  // Block a's estimate succeeds (a new basis); block b's, from one reference, throws.
  t::check_throws_with<ogpsa::invalid_argument>([&] { pass(20, 1); }, {"'b'", "fed 1 reference"});
  CHECK_FALSE(p.reference_pass_active());
  CHECK(t::same_bits(p.subspace_of(ia)->basis, before_a));
  CHECK(t::same_bits(p.subspace_of(ib)->basis, before_b));
  CHECK(p.refreshes() == 1);
  CHECK(p.steps_since_refresh() == 1);
}

TEST_CASE("a rule that scales whole gradients refuses matrix-side blocks") {
  std::vector<float> g(6);
  ogpsa::projector<ogpsa::exact_svd, ogpsa::conflict_only> p(
      ogpsa::exact_svd{.rank = 1}, ogpsa::conflict_only{.behaviour = ogpsa::conflict_only::mode::threshold});
  t::check_throws_with<ogpsa::invalid_argument>([&] { p.add_block("m", ogpsa::view(g.data(), 2, 3), family::left); },
                                                {"conflict_only", "flat blocks only", "'m'"});
}

TEST_CASE("a block with an empty subspace is left unchanged") {
  std::vector<float> grad{1, 2, 3}, zero(3, 0.0f);
  ogpsa::published_projector p;
  const auto id = p.add_block("w", ogpsa::view(grad));
  p.begin_reference_pass();
  p.feed(id, ogpsa::view(std::as_const(zero)));
  p.finish_reference_pass();
  CHECK(p.subspace_of(id)->rank() == 0);
  p.project();
  CHECK(grad == std::vector<float>{1, 2, 3});
}

TEST_CASE("rebind points a block at a new buffer of the same shape") {
  std::vector<float> first(8, 1.0f), second(8), ref(8, 1.0f);
  for (std::size_t i = 0; i < second.size(); ++i) second[i] = 1.0f + (i % 2 ? 0.5f : -0.5f);
  ogpsa::published_projector p;
  const auto id = p.add_block("w", ogpsa::view(first));
  p.begin_reference_pass();
  p.feed(id, ogpsa::view(std::as_const(ref)));
  p.finish_reference_pass();
  p.rebind(id, ogpsa::view(second));
  p.project();
  CHECK(first == std::vector<float>(8, 1.0f));
  // second = ones + alternating +-0.5, orthogonal to the reference: the ones are removed.
  for (std::size_t i = 0; i < second.size(); ++i) CHECK(std::abs(second[i] - (i % 2 ? 0.5f : -0.5f)) < 1e-6f);

  // A matrix-side block rebound to a buffer in the other memory order is read and written through
  // the new strides: every element must match the projection in the registered order.
  using row_major = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  t::matrix<double> registered = t::random_matrix<double>(6, 4, 1);
  ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<double>> q(
      ogpsa::exact_svd{.rank = 2});
  const auto left = q.add_block("m", ogpsa::view(registered), family::left);
  q.begin_reference_pass();
  const t::matrix<double> reference = t::random_matrix<double>(6, 4, 2);
  q.feed(left, ogpsa::view(reference));
  q.finish_reference_pass();
  const t::matrix<double> g = t::random_matrix<double>(6, 4, 3);
  t::matrix<double> expected = g;
  q.project(left, ogpsa::view(expected));
  row_major other = g;
  q.rebind(left, ogpsa::view(other));
  q.project();
  CHECK((t::matrix<double>(other) - expected).cwiseAbs().maxCoeff() < 1e-14);
}

// Float gradients in the subspace of a double basis: with fp64 accumulation and a double basis the
// residual is double rounding (|x| ~ 1e-16 |g|, representable in float near 0); through fp32 it is
// float rounding (~1e-7 |g|). The tolerance in between tells the two apart.
TEST_CASE("a double basis gives fp64 accumulation for float gradients") {
  const auto residual = [](auto storage) {
    using S = decltype(storage);
    std::vector<float> grad(4096), ref(4096);
    for (std::size_t i = 0; i < grad.size(); ++i)
      ref[i] = grad[i] = static_cast<float>(1000 * std::cos(0.1 * static_cast<double>(i)));
    ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, S> p(
        ogpsa::exact_svd{.rank = 1});
    const auto id = p.add_block("w", ogpsa::view(grad));
    p.begin_reference_pass();
    p.feed(id, ogpsa::view(std::as_const(ref)));
    p.finish_reference_pass();
    p.project();
    float largest = 0;
    for (float x : grad) largest = std::max(largest, std::abs(x));
    return largest / 1000.0;
  };
  static_assert(std::is_same_v<ogpsa::accumulator_t<float, double>, double>);
  const double tolerance = 1e-11;
  CHECK(residual(ogpsa::storage<float, double>{}) < tolerance);
  CHECK(residual(ogpsa::storage<float, float>{}) > tolerance);  // the data tells fp32 from fp64
}

namespace {

/// The estimators of a fixed rank but exact_svd, which they are compared with.
template <class E>
struct compared_with_exact_svd : std::bool_constant<t::ranked<E> && !std::is_same_v<E, ogpsa::exact_svd>> {};

}  // namespace

TEST_CASE_TEMPLATE_DEFINE("every SVD estimator plugs into the projector like exact_svd", E,
                          plugs_in_like_exact_svd) {
  // References of exact rank 3 on each family's vectors (4 of them for flat blocks, which are all
  // kept), so every estimator must find exact_svd's subspace and project the same way.
  const t::matrix<double> left = t::random_orthonormal<double>(60, 3, 130), right = t::random_orthonormal<double>(45, 3, 131);
  std::vector<t::matrix<double>> references;
  for (std::uint32_t s = 0; s < 4; ++s) references.push_back(left * t::random_matrix<double>(3, 3, 132 + s) * right.transpose());
  for (family f : t::families_of<E>()) {
    CAPTURE(f);
    const ogpsa::index_t rank = f == family::flat ? 4 : 3;
    auto projected = [&](auto estimator) {
      t::matrix<double> g = t::random_matrix<double>(60, 45, 140);
      ogpsa::projector<decltype(estimator), ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<double>> p(
          estimator);
      const auto id = p.add_block("w", ogpsa::view(g), f);
      p.begin_reference_pass();
      for (const auto& r : references) p.feed(id, ogpsa::view(r));
      p.finish_reference_pass();
      p.project();
      return g;
    };
    const t::matrix<double> expected = projected(ogpsa::exact_svd{.rank = rank});
    CHECK((projected(t::with_rank<E>(rank)) - expected).cwiseAbs().maxCoeff() < 1e-10);
  }
}
TEST_CASE_TEMPLATE_APPLY(plugs_in_like_exact_svd, t::filter_t<compared_with_exact_svd, ogpsa::estimators>);

namespace {

/// Estimates a rank-3 exact_svd subspace of a 60 x 45 block from three reference gradients and
/// projects one gradient; returns the projected gradient and the stored basis.
template <class Storage>
auto estimate_and_project(family f, const std::vector<t::matrix<typename Storage::gradient>>& refs,
                          t::matrix<typename Storage::gradient> g) {
  ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, Storage> p(ogpsa::exact_svd{.rank = 3});
  const auto id = p.add_block("w", ogpsa::view(g), f);
  p.begin_reference_pass();
  for (const auto& r : refs) p.feed(id, ogpsa::view(r));
  p.finish_reference_pass();
  p.project();
  return std::pair{g, p.subspace_of(id)->basis};
}

template <class T>
std::vector<t::matrix<T>> references(std::uint32_t seed) {
  std::vector<t::matrix<T>> out;
  for (std::uint32_t s = 0; s < 3; ++s) out.push_back(t::random_matrix<T>(60, 45, seed + s));
  return out;
}

/// The target-space vectors of a 60 x 45 block as columns, in double.
t::matrix<double> target_space(const t::matrix<double>& g, family f) {
  return f == family::flat ? t::matrix<double>(g.reshaped()) : f == family::left ? g : t::matrix<double>(g.transpose());
}

}  // namespace

TEST_CASE_TEMPLATE_DEFINE("16-bit storage works end to end: estimates in float, a basis rounded at commit", S,
                          sixteen_bit_storage) {
  using G = typename S::gradient;
  using B = typename S::basis;
  static_assert(std::is_same_v<typename ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps,
                                                         S>::work_type, float>);
  for (family f : {family::flat, family::left, family::right}) {
    CAPTURE(f);
    const auto refs = references<G>(10);
    const t::matrix<G> g = t::random_matrix<G>(60, 45, 20);
    const auto [projected, basis] = estimate_and_project<S>(f, refs, g);
    const t::matrix<float> float_basis = estimate_and_project<ogpsa::storage<G, float>>(f, refs, g).second;
    const t::matrix<B> rounded = float_basis.template cast<B>();
    CHECK(t::to_double(basis) == t::to_double(rounded));  // estimated in float, rounded once
    // The gradient was projected against the stored basis U: U^T x = (I - U^T U) U^T g up to
    // rounding, where I - U^T U is what rounding U to 16 bits left of its orthonormality.
    const t::matrix<double> u = t::to_double(basis), x = target_space(t::to_double(projected), f);
    const t::matrix<double> before = target_space(t::to_double(g), f);
    const t::matrix<double> defect = t::matrix<double>::Identity(u.cols(), u.cols()) - u.transpose() * u;
    const t::matrix<double> bound = defect.cwiseAbs() * (u.transpose() * before).cwiseAbs() +
                                    10 * t::projection_tolerance<G, B>() * (u.cwiseAbs().transpose() * before.cwiseAbs());
    CHECK(((u.transpose() * x).cwiseAbs() - bound).maxCoeff() <= 0);
  }
}
TEST_CASE_TEMPLATE_APPLY(sixteen_bit_storage,
                         std::tuple<ogpsa::storage<ogpsa::bfloat16>, ogpsa::storage<ogpsa::float16>,
                                    ogpsa::storage<float, ogpsa::bfloat16>,
                                    ogpsa::storage<ogpsa::bfloat16, ogpsa::bfloat16>,
                                    ogpsa::storage<float, ogpsa::float16>>);

TEST_CASE("a bf16 basis projects within bf16 rounding of the fp32 basis's result") {
  for (family f : {family::flat, family::left, family::right}) {
    CAPTURE(f);
    const auto refs = references<float>(30);
    const t::matrix<float> g = t::random_matrix<float>(60, 45, 40);
    const auto [fp32, u32] = estimate_and_project<ogpsa::storage<float>>(f, refs, g);
    const auto [bf16, u16] = estimate_and_project<ogpsa::storage<float, ogpsa::bfloat16>>(f, refs, g);
    // First order in E = U16 - U32 (|E| <= 2^-8 |U32| entrywise: bf16 keeps 8 significant bits),
    // the results differ by E c + U (E^T x) with c = U^T x: at most 2^-8 (|U| |c| + |U| |U|^T |x|).
    // The bound below doubles that for second-order terms and the fp32 arithmetic of both.
    const t::matrix<double> u = t::to_double(u32), x = target_space(t::to_double(g), f);
    const t::matrix<double> bound =
        0x1p-7 * (u.cwiseAbs() * (u.transpose() * x).cwiseAbs() + u.cwiseAbs() * (u.cwiseAbs().transpose() * x.cwiseAbs())) +
        t::matrix<double>::Constant(x.rows(), x.cols(), 10 * t::tolerance<float>() * x.cwiseAbs().maxCoeff());
    const t::matrix<double> difference =
        (target_space(t::to_double(bf16), f) - target_space(t::to_double(fp32), f)).cwiseAbs();
    CHECK((difference - bound).maxCoeff() <= 0);
    CHECK(difference.maxCoeff() > 0);  // the bf16 basis does round
  }
}

TEST_CASE("bf16 gradients project within bf16 rounding of the fp32 result on the same data") {
  for (family f : {family::flat, family::left, family::right}) {
    CAPTURE(f);
    const auto refs16 = references<ogpsa::bfloat16>(50);
    const t::matrix<ogpsa::bfloat16> g16 = t::random_matrix<ogpsa::bfloat16>(60, 45, 60);
    std::vector<t::matrix<float>> refs32;
    for (const auto& r : refs16) refs32.push_back(r.cast<float>());
    const auto [bf16, u16] = estimate_and_project<ogpsa::storage<ogpsa::bfloat16>>(f, refs16, g16);
    const auto [fp32, u32] = estimate_and_project<ogpsa::storage<float>>(f, refs32, g16.cast<float>());
    CHECK(u16 == u32);  // both estimated in float from the same values
    const t::matrix<double> exact = t::to_double(fp32);
    // One rounding to bf16 (relative error <= 2^-8), plus the fp32 arithmetic.
    const t::matrix<double> bound =
        0x1p-8 * exact.cwiseAbs().array() + 10 * t::tolerance<float>() * t::to_double(g16).cwiseAbs().maxCoeff();
    CHECK(((t::to_double(bf16) - exact).cwiseAbs() - bound).maxCoeff() <= 0);
  }
}

TEST_CASE("feed_columns takes target-space vectors directly, as a fed gradient's columns") {
  using svd = ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<float>>;
  t::matrix<float> w = t::matrix<float>::Zero(6, 5);
  const std::vector<t::matrix<float>> grads{t::random_matrix<float>(6, 5, 1), t::random_matrix<float>(6, 5, 2)};
  svd by_gradient(ogpsa::exact_svd{.rank = 3}), by_columns(ogpsa::exact_svd{.rank = 3});
  const auto a = by_gradient.add_block("w", ogpsa::view(w), family::right);
  const auto b = by_columns.add_block("w", ogpsa::view(w), family::right);
  by_gradient.begin_reference_pass();
  by_columns.begin_reference_pass();
  for (const auto& g : grads) {
    by_gradient.feed(a, ogpsa::view(g));
    const t::matrix<float> rows_as_columns = g.transpose();  // a right block's vectors are G's rows
    by_columns.feed_columns(b, ogpsa::view(rows_as_columns));
  }
  by_gradient.finish_reference_pass();
  by_columns.finish_reference_pass();
  CHECK(by_columns.state().blocks[0].basis == by_gradient.state().blocks[0].basis);
}

TEST_CASE("feed_columns estimates a right block's input space from layer inputs (GPM)") {
  using svd = ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<double>>;
  const t::matrix<double> inputs = t::low_rank_plus_noise<double>(9, 5, 2, 0.0, 3);  // 9 inputs of a rank-2 space
  t::matrix<double> g = t::random_matrix<double>(6, 9, 4) * inputs;  // a gradient whose rows lie in that space
  const double before = g.norm();
  svd p(ogpsa::exact_svd{.rank = 2});
  const auto id = p.add_block("fc", ogpsa::view(g), family::right);
  p.begin_reference_pass();
  const t::matrix<double> columns = inputs.transpose();
  p.feed_columns(id, ogpsa::view(columns));
  p.finish_reference_pass();
  p.project();
  CHECK(g.norm() < 1e-12 * before);

  p.begin_reference_pass();
  const t::matrix<double> too_long = t::matrix<double>::Zero(6, 3);
  t::check_throws_with<ogpsa::shape_error>([&] { p.feed_columns(id, ogpsa::view(too_long)); },
                                           {"ogpsa::projector::feed_columns()", "'fc' (right)",
                                            "target dimension 5", "length 6"});
  p.abandon_reference_pass();
  t::check_throws_with<ogpsa::state_error>([&] { p.feed_columns(id, ogpsa::view(columns)); },
                                           {"ogpsa::projector::feed_columns()", "no reference pass"});
}
