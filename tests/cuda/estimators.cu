// Every estimator on the device (ogpsa::estimators): fed the same reference gradients, it must find
// the host's subspace and project alike.
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/cuda.cuh>

#include "cuda/device.hpp"
#include "policies.hpp"
#include "support.hpp"

using ogpsa::family;
using ogpsa::index_t;
namespace t = ogpsa::test;
namespace tc = ogpsa::test::cuda;

namespace {

/// Projects g (60 x 45, seen as `f`) on the host and on the device after one reference pass
/// over `references`; returns both results.
template <class Estimator, class T>
std::pair<t::matrix<T>, t::matrix<T>> project_both(const Estimator& e, const std::vector<t::matrix<T>>& references,
                                                   family f, const t::matrix<T>& g) {
  using host_projector = ogpsa::projector<Estimator, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<T>>;
  using device_projector =
      ogpsa::projector<Estimator, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<T, T, ogpsa::cuda_memory_tag>>;
  t::matrix<T> on_host = g;
  host_projector host(e);
  const auto id = host.add_block("w", ogpsa::view(on_host), f);
  host.begin_reference_pass();
  for (const auto& r : references) host.feed(id, ogpsa::view(r));
  host.finish_reference_pass();
  host.project();

  device_projector device(e);
  auto on_device = tc::upload(device.exec(), g);
  const auto device_id = device.add_block("w", tc::column_major_view(on_device), f);
  device.begin_reference_pass();
  for (const auto& r : references) {
    auto reference = tc::upload(device.exec(), r);
    device.feed(device_id, ogpsa::as_const(tc::column_major_view(reference)));
  }
  device.finish_reference_pass();
  device.project();
  return {on_host, tc::download(device.exec(), on_device)};
}

}  // namespace

TEST_CASE_TEMPLATE_DEFINE("every estimator on the device projects as on the host", E, device_as_host) {
  // Noisy references of dominant rank 3 (so that sketches must find the top directions), on each
  // family's vectors; the Gaussian test matrices are drawn on the host, the same on both sides.
  const t::matrix<double> left = t::random_orthonormal<double>(60, 3, 230), right = t::random_orthonormal<double>(45, 3, 231);
  std::vector<t::matrix<double>> references;
  for (std::uint32_t s = 0; s < 4; ++s)
    references.push_back(20 * left * t::random_matrix<double>(3, 3, 232 + s) * right.transpose() +
                         1e-3 * t::random_matrix<double>(60, 45, 240 + s));
  const t::matrix<double> g = t::random_matrix<double>(60, 45, 250);
  for (family f : t::families_of<E>()) {
    CAPTURE(f);
    // Flat blocks see each reference as one vector: all 4 kept, so no near-tie decides the rank.
    const auto [host, device] = project_both(t::with_rank<E>(f == family::flat ? 4 : 3), references, f, g);
    CHECK((device - host).cwiseAbs().maxCoeff() < 1e-9);
  }
}
TEST_CASE_TEMPLATE_APPLY(device_as_host, ogpsa::estimators);
