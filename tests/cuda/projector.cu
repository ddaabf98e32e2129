// The projector with device storage: the estimators run on the CUDA backend's primitives and must
// give what the host backend gives on the same data.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/cuda.cuh>

#include "cuda/device.hpp"
#include "reference/published.hpp"
#include "support.hpp"

using ogpsa::family;
using ogpsa::index_t;
namespace t = ogpsa::test;
namespace tc = ogpsa::test::cuda;

namespace {

template <class Estimator, class Rule, class G, class B = ogpsa::working_t<G>>
using device_projector = ogpsa::projector<Estimator, Rule, ogpsa::every_n_steps, ogpsa::storage<G, B, ogpsa::cuda_memory_tag>>;
template <class Estimator, class Rule, class T>
using host_projector = ogpsa::projector<Estimator, Rule, ogpsa::every_n_steps, ogpsa::storage<T>>;

/// The same projector on the host and on the device, fed the same reference gradients for one
/// block of shape rows x cols seen as `kind`, then projecting the same gradient.
template <class T, class Estimator, class Rule = ogpsa::orthogonal>
struct twins {
  host_projector<Estimator, Rule, T> host;
  device_projector<Estimator, Rule, T> device;
  t::matrix<T> host_gradient;
  tc::device_matrix<T> device_gradient;
  ogpsa::block_id id;

  twins(Estimator e, index_t rows, index_t cols, family kind, Rule rule = {})
      : host(e, rule), device(e, rule), host_gradient(rows, cols), device_gradient(rows, cols, device.exec().stream()) {
    id = host.add_block("w", ogpsa::view(host_gradient), kind);
    device.add_block("w", tc::column_major_view(device_gradient), kind);
  }

  void refresh(const std::vector<t::matrix<T>>& references, const std::vector<index_t>& sets = {}) {
    host.begin_reference_pass();
    device.begin_reference_pass();
    for (std::size_t i = 0; i < references.size(); ++i) {
      const index_t set = sets.empty() ? 0 : sets[i];
      host.feed(id, ogpsa::view(references[i]), set);
      auto on_device = tc::upload(device.exec(), references[i]);
      device.feed(id, ogpsa::as_const(tc::column_major_view(on_device)), set);
    }
    host.finish_reference_pass();
    device.finish_reference_pass();
  }

  /// Projects g on both; returns the device result.
  t::matrix<T> project(const t::matrix<T>& g) {
    host_gradient = g;
    device_gradient = tc::upload(device.exec(), g);
    device.rebind(id, tc::column_major_view(device_gradient));
    host.project();
    device.project();
    return tc::download(device.exec(), device_gradient);
  }

  t::matrix<double> host_basis() const { return host.subspace_of(id)->basis.template cast<double>(); }
  t::matrix<double> device_basis() { return tc::download(device.exec(), device.subspace_of(id)->basis).template cast<double>(); }
};

}  // namespace

TEST_CASE_TEMPLATE("the published method on the device reproduces the published formulas", T, float, double) {
  const index_t d = 3000;
  std::vector<t::matrix<T>> refs;
  for (std::uint32_t b = 0; b < 4; ++b) refs.push_back(t::random_matrix<T>(d, 1, 50 + b));
  twins<T, ogpsa::mean_gradient> p(ogpsa::mean_gradient{}, d, 1, family::flat);
  p.refresh(refs, {0, 0, 1, 1});  // two reference sets of two batches
  const t::matrix<T> g = t::random_matrix<T>(d, 1, 60);
  const t::matrix<T> got = p.project(g);
  std::vector<published::vec> dirs;
  for (int s = 0; s < 2; ++s) {
    std::vector<published::vec> batches;
    for (int b = 0; b < 2; ++b) {
      const t::matrix<T>& r = refs[static_cast<std::size_t>(2 * s + b)];
      batches.emplace_back(r.data(), r.data() + r.size());
    }
    dirs.push_back(*published::direction(batches));
  }
  const published::vec expected = published::project(published::vec(g.data(), g.data() + g.size()), dirs);
  double worst = 0;
  for (index_t i = 0; i < d; ++i) worst = std::max(worst, std::abs(static_cast<double>(got(i)) - expected[static_cast<std::size_t>(i)]));
  CHECK(worst < (std::is_same_v<T, float> ? 1e-5 : 1e-9));
  CHECK((got - p.host_gradient).cwiseAbs().maxCoeff() < 10 * t::tolerance<T>());
  CHECK(p.device.subspace_of(p.id)->rank() == 2);
}

TEST_CASE_TEMPLATE("exact_svd on the device agrees with the host for every family", T, float, double) {
  for (family kind : {family::flat, family::left, family::right}) {
    CAPTURE(kind);
    twins<T, ogpsa::exact_svd> p(ogpsa::exact_svd{.rank = 3}, 60, 45, kind);
    std::vector<t::matrix<T>> refs;
    for (std::uint32_t s = 0; s < 3; ++s) refs.push_back(t::random_matrix<T>(60, 45, 90 + s));
    p.refresh(refs);
    REQUIRE(p.device.subspace_of(p.id)->rank() == 3);
    CHECK(t::orthonormality_error(p.device_basis()) < 10 * t::tolerance<T>());
    CHECK(t::max_principal_sine(p.device_basis(), p.host_basis()) < (std::is_same_v<T, float> ? 1e-4 : 1e-10));
    CHECK((p.device_basis() - p.host_basis()).cwiseAbs().maxCoeff() < (std::is_same_v<T, float> ? 1e-4 : 1e-10));
    const t::matrix<T> g = t::random_matrix<T>(60, 45, 80);
    const t::matrix<T> got = p.project(g);
    CHECK((got - p.host_gradient).cwiseAbs().maxCoeff() < 100 * t::tolerance<T>() * g.cwiseAbs().maxCoeff());
  }
}

TEST_CASE("ill-conditioned snapshots take the QR route on the device as on the host") {
  for (auto [rows, cols] : {std::pair<index_t, index_t>{2000, 12}, {12, 2000}}) {
    const auto data = t::low_rank_plus_noise<double>(rows, cols, 4, 0.0, 13, 1e-2);
    twins<double, ogpsa::exact_svd> p(ogpsa::exact_svd{.rank = 4}, rows, 4, family::left);
    std::vector<t::matrix<double>> refs;
    for (index_t j = 0; j < cols; j += 4) refs.push_back(data.middleCols(j, 4));
    p.refresh(refs);
    REQUIRE(p.device.subspace_of(p.id)->rank() == 4);
    CHECK(t::orthonormality_error(p.device_basis()) < 1e-12);
    CHECK(t::max_principal_sine(p.device_basis(), p.host_basis()) < 1e-8);
    CHECK(p.device.subspace_of(p.id)->strengths[3] == doctest::Approx(1e-6).epsilon(1e-6));
  }
}

TEST_CASE("bf16 gradients with a float basis: a device projector end to end") {
  device_projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::bfloat16> p(ogpsa::exact_svd{.rank = 4});
  static_assert(std::is_same_v<decltype(p)::basis_type, float>);
  const t::matrix<float> signal = t::low_rank_plus_noise<float>(256, 64, 4, 1e-2, 70);
  auto gradient = tc::upload(p.exec(), tc::rounded<ogpsa::bfloat16>(t::matrix<float>(t::random_matrix<float>(256, 64, 71) + 20 * signal)));
  const auto id = p.add_block("w", tc::column_major_view(gradient), family::left);
  p.begin_reference_pass();
  auto reference = tc::upload(p.exec(), tc::rounded<ogpsa::bfloat16>(signal));  // 64 snapshots of the signal
  p.feed(id, ogpsa::as_const(tc::column_major_view(reference)));
  p.finish_reference_pass();
  const t::matrix<double> u = tc::download(p.exec(), p.subspace_of(id)->basis).cast<double>();
  const t::matrix<double> before = tc::widened(tc::download(p.exec(), gradient));
  p.project();
  const t::matrix<double> after = tc::widened(tc::download(p.exec(), gradient));
  CHECK((u.transpose() * after).norm() < 0x1p-6 * (u.transpose() * before).norm());
  CHECK(((after - (before - u * (u.transpose() * before))).array().abs() - 0x1p-8 * after.array().abs()).maxCoeff() <
        1e-4 * before.cwiseAbs().maxCoeff());
}

TEST_CASE("device subspaces survive a round trip through the host state") {
  twins<float, ogpsa::exact_svd> p(ogpsa::exact_svd{.rank = 2}, 50, 8, family::left);
  p.refresh({t::random_matrix<float>(50, 8, 72)});
  const auto saved = p.device.state();
  REQUIRE(saved.blocks.size() == 1);
  CHECK(saved.blocks[0].basis.cast<double>() == p.device_basis());
  device_projector<ogpsa::exact_svd, ogpsa::orthogonal, float> restored(ogpsa::exact_svd{.rank = 2});
  const t::matrix<float> before = t::random_matrix<float>(50, 8, 73);
  auto gradient = tc::upload(restored.exec(), before);
  auto same = gradient;
  restored.add_block("w", tc::column_major_view(gradient), family::left);
  restored.restore(saved);
  restored.project();
  p.device.rebind(p.id, tc::column_major_view(same));
  p.device.project();
  const t::matrix<float> after = tc::download(restored.exec(), gradient);
  CHECK(after == tc::download(p.device.exec(), same));
  // Equal because both projected, not because neither wrote: the restored basis was removed.
  const t::matrix<double> u = p.device_basis();
  CHECK((u.transpose() * after.cast<double>()).norm() < 1e-5 * (u.transpose() * before.cast<double>()).norm());
}

TEST_CASE("a NaN reference gradient rejects the pass on the device and keeps the basis") {
  twins<float, ogpsa::mean_gradient> p(ogpsa::mean_gradient{}, 500, 1, family::flat);
  p.refresh({t::random_matrix<float>(500, 1, 74)});
  const t::matrix<double> before = p.device_basis();
  t::matrix<float> poisoned = t::random_matrix<float>(500, 1, 75);
  poisoned(17) = std::numeric_limits<float>::quiet_NaN();
  auto on_device = tc::upload(p.device.exec(), poisoned);
  p.device.begin_reference_pass();
  t::check_throws_with<ogpsa::numeric_error>([&] { p.device.feed(p.id, ogpsa::as_const(tc::column_major_view(on_device))); },
                                             {"ogpsa::projector::feed()", "'w'", "NaN or Inf"});
  CHECK_FALSE(p.device.reference_pass_active());
  CHECK(p.device_basis() == before);
}

namespace {

/// Keeps a stream busy for about `cycles` clock ticks.
__global__ void spin(long long cycles) {
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
}

struct non_finite_counter {
  int seen = 0;
  void on_non_finite(const ogpsa::non_finite_info&) { ++seen; }
};

}  // namespace

// In a trainer the stream holds the whole backward pass when project() is called: waiting for it
// would stop the host from queueing the optimizer step and the next forward.
TEST_CASE("project() waits for the device only when a callback reads what it reports") {
  twins<float, ogpsa::exact_svd> p(ogpsa::exact_svd{.rank = 2}, 40, 30, family::left);
  p.refresh({t::random_matrix<float>(40, 30, 80)});
  const cudaStream_t stream = p.device.exec().stream();
  p.host_gradient = t::random_matrix<float>(40, 30, 81);
  p.device_gradient = tc::upload(p.device.exec(), p.host_gradient);
  p.device.rebind(p.id, tc::column_major_view(p.device_gradient));
  p.host.project();
  spin<<<1, 1, 0, stream>>>(200'000'000);  // about 0.1 s
  p.device.project();
  CHECK(cudaStreamQuery(stream) == cudaErrorNotReady);
  CHECK((tc::download(p.device.exec(), p.device_gradient) - p.host_gradient).cwiseAbs().maxCoeff() < 1e-5);

  t::matrix<float> poisoned = t::random_matrix<float>(40, 30, 82);
  poisoned(3) = std::numeric_limits<float>::quiet_NaN();
  p.device_gradient = tc::upload(p.device.exec(), poisoned);
  p.device.rebind(p.id, tc::column_major_view(p.device_gradient));
  non_finite_counter counter;
  spin<<<1, 1, 0, stream>>>(200'000'000);
  p.device.project(counter);
  CHECK(counter.seen == 1);
}

namespace {

struct recorder {
  std::vector<ogpsa::projection_info> projections;
  void on_projection(const ogpsa::projection_info& i) { projections.push_back(i); }
};

}  // namespace

TEST_CASE("projection diagnostics on the device match the host's") {
  for (family kind : {family::flat, family::left, family::right}) {
    CAPTURE(kind);
    twins<float, ogpsa::exact_svd, ogpsa::soft> p(ogpsa::exact_svd{.rank = 2}, 40, 30, kind, ogpsa::soft{.alpha = 0.5});
    p.refresh({t::random_matrix<float>(40, 30, 76), t::random_matrix<float>(40, 30, 77)});
    p.host_gradient = t::random_matrix<float>(40, 30, 78);
    p.device_gradient = tc::upload(p.device.exec(), p.host_gradient);
    p.device.rebind(p.id, tc::column_major_view(p.device_gradient));
    recorder on_host, on_device;
    p.host.project(on_host);
    p.device.project(on_device);
    REQUIRE(on_device.projections.size() == 1);
    const ogpsa::projection_info& d = on_device.projections[0];
    const ogpsa::projection_info& h = on_host.projections[0];
    CHECK(d.gradient_norm == doctest::Approx(h.gradient_norm).epsilon(1e-5));
    CHECK(d.projected_norm == doctest::Approx(h.projected_norm).epsilon(1e-4));
    CHECK(d.removed_fraction == doctest::Approx(h.removed_fraction).epsilon(1e-3));
    CHECK(d.cosine_before == doctest::Approx(h.cosine_before).epsilon(1e-3));
    CHECK(d.cosine_after == doctest::Approx(h.cosine_after).epsilon(1e-3));
    CHECK(d.rank == h.rank);
  }
}

// As on the host (tests/callbacks.cpp): for a gradient almost in the subspace, the numbers after
// projection are measured over what the device wrote, against a long double reference of it.
TEST_CASE("device diagnostics are measured, also for gradients almost in the subspace") {
  using wide = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic>;
  constexpr index_t rows = 60, cols = 50;
  for (family kind : {family::flat, family::left, family::right}) {
    CAPTURE(kind);
    twins<float, ogpsa::exact_svd> p(ogpsa::exact_svd{.rank = 3}, rows, cols, kind);
    std::vector<t::matrix<float>> refs;
    for (std::uint32_t i = 0; i < 4; ++i) refs.push_back(t::random_matrix<float>(rows, cols, 80 + i));
    p.refresh(refs);
    const wide u = p.device_basis().cast<long double>();
    const auto target_space = [&](const t::matrix<float>& g) -> wide {
      const wide w = g.cast<long double>();
      if (kind == family::flat) return w.reshaped(w.size(), 1);
      return kind == family::left ? w : wide(w.transpose());
    };
    const index_t vectors = target_space(p.host_gradient).cols();
    for (double eps : {1e-1, 1e-3, 1e-6}) {
      CAPTURE(eps);
      const wide in_subspace = u * t::random_matrix<double>(3, vectors, 90).cast<long double>();
      const wide noise = t::random_matrix<double>(u.rows(), vectors, 91).cast<long double>();
      const wide x = in_subspace + eps * in_subspace.norm() / noise.norm() * noise;
      const wide g = kind == family::flat ? wide(x.reshaped(rows, cols)) : kind == family::left ? x : wide(x.transpose());
      p.device_gradient = tc::upload(p.device.exec(), t::matrix<float>(g.cast<float>()));
      p.device.rebind(p.id, tc::column_major_view(p.device_gradient));
      recorder rec;
      p.device.project(p.id, tc::column_major_view(p.device_gradient), rec);
      REQUIRE(rec.projections.size() == 1);
      const wide after = target_space(tc::download(p.device.exec(), p.device_gradient));
      const long double norm = after.norm(), cosine = (u.transpose() * after).norm() / norm;
      CHECK(std::abs(rec.projections[0].projected_norm - norm) <= 1e-4L * norm);
      CHECK(std::abs(rec.projections[0].cosine_after - cosine) <= eps * cosine);
    }
  }
}
