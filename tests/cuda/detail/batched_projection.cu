// Many-block projections through `project_all`: every block shape, layout and alignment in one
// call, checked block by block against the host backend; and the mixed-precision paths (bf16 and
// fp16 gradients, bf16 bases) against double-precision references.
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/cuda.cuh>

#include "cuda/device.hpp"
#include "policies.hpp"
#include "support.hpp"

using backend = ogpsa::cuda::backend;
using host_backend = ogpsa::cpu::backend;
using ogpsa::bfloat16;
using ogpsa::family;
using ogpsa::float16;
using ogpsa::index_t;
using ogpsa::detail::target_columns;
namespace t = ogpsa::test;
namespace tc = ogpsa::test::cuda;

namespace {

ogpsa::cuda::execution& exec() {
  static auto* e = new ogpsa::cuda::execution;  // never destroyed: see tests/cuda/backend.cu
  return *e;
}

/// One block inside a shared gradient buffer: a flat vector of d = m elements, or an m x n
/// weight stored row-major (PyTorch) or column-major, seen through a family.
struct block_spec {
  index_t offset;
  index_t m, n;
  bool row_major;
  family kind;
  index_t k;
};

template <class T, class Space>
auto block_view(T* buffer, const block_spec& b) {
  using view = ogpsa::matrix_view<T, Space>;
  const std::array<index_t, 2> strides = b.row_major ? std::array<index_t, 2>{b.n, 1} : std::array<index_t, 2>{1, b.m};
  return target_columns(view(buffer + b.offset, {b.m, b.n}, strides), b.kind, "test");
}

/// A host reference as an Eigen matrix with its strides.
template <class T>
auto mapped(const ogpsa::detail::matrix_ref<T, ogpsa::host_memory_tag>& r) {
  using plain = t::matrix<std::remove_const_t<T>>;
  using stride = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
  return Eigen::Map<std::conditional_t<std::is_const_v<T>, const plain, plain>, 0, stride>(
      r.data, r.rows, r.cols, stride(r.col_stride, r.row_stride));
}

index_t basis_rows(const block_spec& b) {
  return b.kind == family::right ? b.n : b.m;
}

constexpr index_t chunk = ogpsa::cuda::detail::chunk_elements<float, float>;

// Flat blocks of every size class (one element, below a packet, several chunks, misaligned by one
// element, wide bases) and matrix-side blocks sharing shapes across layouts and families.
const std::vector<block_spec> model{
    {0, 1, 1, false, family::flat, 1},
    {8, 7, 1, false, family::flat, 2},
    {16, 4096, 1, false, family::flat, 8},
    {4113, 3 * chunk + 5, 1, false, family::flat, 9},
    {40000, 100003, 1, false, family::flat, 17},
    {140004, 2000, 1, false, family::flat, 64},
    {142004, 64, 48, false, family::left, 8},
    {145076, 48, 64, true, family::right, 8},  // the same GEMM shape as the block above
    {148148, 48, 64, true, family::left, 3},   // a row-major target
    {151220, 130, 20, false, family::left, 64},
    {153820, 30, 1, false, family::flat, 0},   // an empty basis
    {153850, 0, 1, false, family::flat, 2},    // an empty block
};
constexpr index_t model_size = 153860;

template <class T, class Rule>
void check_model(const Rule& rule, bool diagnostics) {
  const t::matrix<T> data = t::random_matrix<T>(model_size, 1, 21);
  t::matrix<T> on_host = data;
  auto on_device = tc::upload(exec(), data);
  std::vector<t::matrix<T>> host_bases;
  std::vector<tc::device_matrix<T>> device_bases;
  for (std::size_t i = 0; i < model.size(); ++i) {
    const index_t rows = basis_rows(model[i]);
    host_bases.push_back(rows == 0 ? t::matrix<T>(0, model[i].k)
                                   : t::random_orthonormal<T>(rows, model[i].k, 30 + static_cast<std::uint32_t>(i)));
    device_bases.push_back(tc::upload(exec(), host_bases.back()));
  }
  std::vector<ogpsa::projection_task<t::matrix<T>, host_backend::ref<T>>> host_tasks;
  std::vector<ogpsa::projection_task<tc::device_matrix<T>, backend::ref<T>>> device_tasks;
  for (std::size_t i = 0; i < model.size(); ++i) {
    host_tasks.push_back({&host_bases[i], block_view<T, ogpsa::host_memory_tag>(on_host.data(), model[i]), {}});
    device_tasks.push_back({&device_bases[i], block_view<T, ogpsa::cuda_memory_tag>(on_device.data(), model[i]), {}});
  }
  host_backend::workspace host_ws;
  backend::workspace ws;
  ogpsa::cpu::execution host;
  host_backend::project_all(host, std::span(host_tasks), rule, host_ws, diagnostics);
  backend::project_all(exec(), std::span(device_tasks), rule, ws, diagnostics);
  const t::matrix<T> got = tc::download(exec(), on_device);
  const double tolerance = 10 * t::tolerance<T>() * data.cwiseAbs().maxCoeff();
  for (std::size_t i = 0; i < model.size(); ++i) {
    CAPTURE(i);
    const block_spec& b = model[i];
    const index_t size = b.m * b.n;
    CHECK((got.middleRows(b.offset, size) - on_host.middleRows(b.offset, size)).cwiseAbs().maxCoeff() <= tolerance);
    const ogpsa::projection_stats& d = device_tasks[i].stats;
    const ogpsa::projection_stats& h = host_tasks[i].stats;
    CHECK(d.finite == h.finite);
    CHECK(d.changed == h.changed);
    if (!diagnostics) continue;
    CHECK(d.gradient_sq == doctest::Approx(h.gradient_sq).epsilon(1e-5));
    CHECK(d.coefficient_sq == doctest::Approx(h.coefficient_sq).epsilon(1e-4));
    CHECK(d.removed_sq == doctest::Approx(h.removed_sq).epsilon(1e-4));
    // Measured after the update, each backend over the values it wrote.
    CHECK(d.projected_sq == doctest::Approx(h.projected_sq).epsilon(1e-4));
    CHECK(d.remaining_coefficient_sq == doctest::Approx(h.remaining_coefficient_sq).epsilon(1e-4).scale(1e-3 * h.coefficient_sq));
    CHECK(d.scale == h.scale);
  }
  CHECK(got.middleRows(153820, 40) == data.middleRows(153820, 40));  // the empty-basis block and the tail
}

}  // namespace

TEST_CASE_TEMPLATE("project_all projects every kind of block in one call, as the host backend does one by one", T,
                   float, double) {
  for (bool diagnostics : {false, true}) {
    CAPTURE(diagnostics);
    // The model has matrix-side blocks, to which no backend applies a rule that scales gradients.
    t::for_each_type<ogpsa::rules>([&]<class Rule>() {
      for (const Rule& rule : t::rule_samples<Rule>()) {
        CAPTURE(std::string(Rule::name));
        if (!rule.scales_gradient()) check_model<T>(rule, diagnostics);
      }
    });
  }
}

namespace {

/// Both backends' tasks over the same model, bases and gradients.
template <class T>
struct twin_model {
  t::matrix<T> on_host;
  tc::device_matrix<T> on_device;
  std::vector<t::matrix<T>> host_bases;
  std::vector<tc::device_matrix<T>> device_bases;
  std::vector<ogpsa::projection_task<t::matrix<T>, host_backend::ref<T>>> host_tasks;
  std::vector<ogpsa::projection_task<tc::device_matrix<T>, backend::ref<T>>> device_tasks;

  explicit twin_model(std::uint32_t seed)
      : on_host(t::random_matrix<T>(model_size, 1, seed)), on_device(tc::upload(exec(), on_host)) {
    for (std::size_t i = 0; i < model.size(); ++i) {
      const index_t rows = basis_rows(model[i]);
      host_bases.push_back(rows == 0 ? t::matrix<T>(0, model[i].k)
                                     : t::random_orthonormal<T>(rows, model[i].k, seed + static_cast<std::uint32_t>(i)));
      device_bases.push_back(tc::upload(exec(), host_bases.back()));
    }
    for (std::size_t i = 0; i < model.size(); ++i) {
      host_tasks.push_back({&host_bases[i], block_view<T, ogpsa::host_memory_tag>(on_host.data(), model[i]), {}});
      device_tasks.push_back({&device_bases[i], block_view<T, ogpsa::cuda_memory_tag>(on_device.data(), model[i]), {}});
    }
  }
};

}  // namespace

// The buffer a data-parallel run all-reduces between the halves: both backends must lay it out
// alike (per task, k x cols coefficients column-major, zeros for empty tasks; then one
// |x|^2 per task with diagnostics), or ranks mixing backends would sum unrelated numbers.
TEST_CASE_TEMPLATE("coefficients_all packs the coefficients exactly as the host backend does", T, float, double) {
  for (bool diagnostics : {false, true}) {
    CAPTURE(diagnostics);
    twin_model<T> twin(50);
    host_backend::workspace host_ws;
    backend::workspace ws;
    ogpsa::cpu::execution host;
    host_backend::coefficients_all(host, std::span(twin.host_tasks), host_ws, diagnostics);
    backend::coefficients_all(exec(), std::span(twin.device_tasks), ws, diagnostics);
    const std::span<T> expected = host_ws.template packed_coefficients<T>();
    const ogpsa::cuda::device_span<T> packed = ws.template packed_coefficients<T>();
    REQUIRE(packed.size == expected.size());
    std::vector<T> got(packed.size);
    REQUIRE(cudaMemcpy(got.data(), packed.data, packed.size * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
    for (std::size_t i = 0; i < got.size(); ++i) {
      CAPTURE(i);
      CHECK(static_cast<double>(got[i]) ==
            doctest::Approx(static_cast<double>(expected[i])).epsilon(10 * t::tolerance<T>()).scale(1.0));
    }
  }
}

// update_all reads what sits in the packed buffer when it runs: doubling the buffer between the
// halves (what an all-reduce of two identical ranks does) must remove twice the component.
TEST_CASE("update_all applies the packed coefficients it finds, as after an all-reduce") {
  twin_model<double> twin(60);
  backend::workspace ws;
  backend::coefficients_all(exec(), std::span(twin.device_tasks), ws, false);
  const ogpsa::cuda::device_span<double> packed = ws.packed_coefficients<double>();
  std::vector<double> c(packed.size);
  REQUIRE(cudaMemcpy(c.data(), packed.data, packed.size * sizeof(double), cudaMemcpyDeviceToHost) == cudaSuccess);
  for (double& v : c) v *= 2;
  REQUIRE(cudaMemcpy(packed.data, c.data(), packed.size * sizeof(double), cudaMemcpyHostToDevice) == cudaSuccess);
  backend::update_all(exec(), std::span(twin.device_tasks), ogpsa::orthogonal{}, ws, false);
  const t::matrix<double> got = tc::download(exec(), twin.on_device);
  for (std::size_t i = 0; i < model.size(); ++i) {
    CAPTURE(i);
    const block_spec& b = model[i];
    if (b.m * b.n == 0 || b.k == 0) continue;
    const auto x = mapped(block_view<const double, ogpsa::host_memory_tag>(twin.on_host.data(), b));
    const auto y = mapped(block_view<const double, ogpsa::host_memory_tag>(got.data(), b));
    const t::matrix<double>& u = twin.host_bases[i];
    const t::matrix<double> expected = x - 2 * u * (u.transpose() * x);
    CHECK((y - expected).cwiseAbs().maxCoeff() <= 1e-10 * (1 + x.cwiseAbs().maxCoeff()));
  }
}

// A named namespace: doctest names each instantiation after its type.
namespace mixed {

template <class Gradient, class Basis>
struct types {
  using G = Gradient;
  using B = Basis;
};

}  // namespace mixed

namespace {

using mixed::types;

/// Relative precision of the gradient type: results are compared to within a few of its ulps.
template <class G>
constexpr double precision = std::is_same_v<G, bfloat16> ? 0x1p-8 : std::is_same_v<G, float16> ? 0x1p-10 : 1e-6;

}  // namespace

namespace {

/// Blocks of G gradients with B bases, given large components in their subspaces (so that what is
/// left after projection tests them), projected in one `project_all` call.
template <class G, class B>
struct low_precision_case {
  std::vector<t::matrix<double>> bases;
  t::matrix<double> before, after;  // widened
  std::vector<ogpsa::projection_stats> stats;

  low_precision_case(const std::vector<block_spec>& blocks, t::matrix<float> values, float component,
                     std::uint32_t seed, bool diagnostics) {
    std::vector<tc::device_matrix<B>> device_bases;
    for (const block_spec& b : blocks) {
      const t::matrix<B> u = tc::rounded<B>(t::random_orthonormal<float>(basis_rows(b), b.k, seed));
      bases.push_back(tc::widened(u));
      device_bases.push_back(tc::upload(exec(), u));
      auto x = mapped(block_view<float, ogpsa::host_memory_tag>(values.data(), b));
      x += component * bases.back().cast<float>() * t::random_matrix<float>(b.k, x.cols(), seed + 1);
    }
    const t::matrix<G> data = tc::rounded<G>(values);
    auto on_device = tc::upload(exec(), data);
    std::vector<ogpsa::projection_task<tc::device_matrix<B>, backend::ref<G>>> tasks;
    for (std::size_t i = 0; i < blocks.size(); ++i)
      tasks.push_back({&device_bases[i], block_view<G, ogpsa::cuda_memory_tag>(on_device.data(), blocks[i]), {}});
    backend::workspace ws;
    backend::project_all(exec(), std::span(tasks), ogpsa::orthogonal{}, ws, diagnostics);
    before = tc::widened(data);
    after = tc::widened(tc::download(exec(), on_device));
    for (const auto& task : tasks) stats.push_back(task.stats);
  }

  auto before_of(const block_spec& b) const { return mapped(block_view<const double, ogpsa::host_memory_tag>(before.data(), b)); }
  auto after_of(const block_spec& b) const { return mapped(block_view<const double, ogpsa::host_memory_tag>(after.data(), b)); }
};

}  // namespace

TEST_CASE_TEMPLATE("low-precision gradients and bases project with fp32 accumulation", P, types<bfloat16, float>,
                   types<float16, float>, types<bfloat16, bfloat16>, types<float16, float16>, types<float, bfloat16>) {
  using G = typename P::G;
  // flat aligned (packet loads), flat of odd length (scalar loads), and two matrix-side layouts
  const std::vector<block_spec> blocks{{0, 8192, 1, false, family::flat, 2},
                                       {8192, 4099, 1, false, family::flat, 3},
                                       {12291, 96, 40, false, family::left, 8},
                                       {16131, 40, 96, true, family::right, 8},
                                       {19971, 96, 40, true, family::left, 5}};
  const low_precision_case<G, typename P::B> c(blocks, t::random_matrix<float>(23811, 1, 40), 30, 41, true);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    CAPTURE(i);
    const auto xm = c.before_of(blocks[i]);
    const auto ym = c.after_of(blocks[i]);
    const t::matrix<double>& u = c.bases[i];
    const t::matrix<double> expected = xm - u * (u.transpose() * xm);
    const double scale = xm.cwiseAbs().maxCoeff();
    CHECK(((ym - expected).array().abs() - precision<G> * expected.array().abs()).maxCoeff() < 1e-4 * scale);
    CHECK((u.transpose() * ym).norm() < 0x1p-6 * (u.transpose() * xm).norm());
    CHECK(c.stats[i].changed);
    CHECK(c.stats[i].gradient_sq == doctest::Approx(xm.squaredNorm()).epsilon(1e-5));
  }
}

// Gradients of magnitude 1e-4 put fp16 coefficients far below 1: scaled by the row count alone,
// their hi and lo parts fell into fp16 subnormals and about 2^-10 of the subspace component
// stayed behind. Scaled by their own largest magnitude, what stays is the gradient's rounding.
TEST_CASE_TEMPLATE("fp16 gradients of magnitude 1e-4 lose their subspace component on matrix-side blocks", P,
                   types<float16, float>, types<float16, float16>) {
  const std::vector<block_spec> blocks{{0, 4096, 16, false, family::left, 4},
                                       {65536, 16, 4096, true, family::right, 4}};
  const t::matrix<float> values = 1e-4f * t::random_matrix<float>(131072, 1, 50);
  const low_precision_case<typename P::G, typename P::B> c(blocks, values, 30e-4f, 51, false);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    CAPTURE(i);
    const t::matrix<double>& u = c.bases[i];
    CHECK((u.transpose() * c.after_of(blocks[i])).norm() < 0x1p-12 * (u.transpose() * c.before_of(blocks[i])).norm());
  }
}

namespace {

/// The first `blocks` blocks of `model` over a device copy of `data`, with the bases of
/// `check_model`, uploaded through `on`.
template <class T>
struct device_model {
  tc::device_matrix<T> gradient;
  std::vector<tc::device_matrix<T>> bases;
  std::vector<ogpsa::projection_task<tc::device_matrix<T>, backend::ref<T>>> tasks;

  device_model(const t::matrix<T>& data, std::size_t blocks, ogpsa::cuda::execution& on)
      : gradient(tc::upload(on, data)) {
    bases.reserve(blocks);
    for (std::size_t i = 0; i < blocks; ++i) {
      const index_t rows = basis_rows(model[i]);
      bases.push_back(tc::upload(on, rows == 0 ? t::matrix<T>(0, model[i].k)
                                               : t::random_orthonormal<T>(rows, model[i].k, 30 + static_cast<std::uint32_t>(i))));
      tasks.push_back({&bases.back(), block_view<T, ogpsa::cuda_memory_tag>(gradient.data(), model[i]), {}});
    }
  }

  void project(ogpsa::cuda::execution& on, backend::workspace& ws, bool diagnostics,
               ogpsa::flags_report flags = ogpsa::flags_report::read) {
    backend::project_all(on, std::span(tasks), ogpsa::orthogonal{}, ws, diagnostics, flags);
  }
};

/// What a projection wrote and the stats it reported.
template <class T>
struct projected_model {
  t::matrix<T> written;
  std::vector<ogpsa::projection_stats> stats;
};

template <class T>
projected_model<T> downloaded(ogpsa::cuda::execution& on, const device_model<T>& m) {
  projected_model<T> out{tc::download(on, m.gradient), {}};
  for (const auto& task : m.tasks) out.stats.push_back(task.stats);
  return out;
}

/// The model of `check_model` projected from `data` through `ws` (with diagnostics unless the
/// flags are not read).
template <class T>
projected_model<T> project_model(const t::matrix<T>& data, std::size_t blocks, backend::workspace& ws,
                                 ogpsa::cuda::execution& on = exec(),
                                 ogpsa::flags_report flags = ogpsa::flags_report::read) {
  device_model<T> m(data, blocks, on);
  m.project(on, ws, flags == ogpsa::flags_report::read, flags);
  return downloaded(on, m);
}

template <class T>
void check_same_bits(const projected_model<T>& a, const projected_model<T>& b) {
  REQUIRE(a.written.size() == b.written.size());
  CHECK(std::memcmp(a.written.data(), b.written.data(), static_cast<std::size_t>(a.written.size()) * sizeof(T)) == 0);
  REQUIRE(a.stats.size() == b.stats.size());
  for (std::size_t i = 0; i < a.stats.size(); ++i) {
    CAPTURE(i);
    CHECK(a.stats[i].gradient_sq == b.stats[i].gradient_sq);
    CHECK(a.stats[i].coefficient_sq == b.stats[i].coefficient_sq);
    CHECK(a.stats[i].projected_sq == b.stats[i].projected_sq);
  }
}

}  // namespace

TEST_CASE_TEMPLATE("a projection gives the same bits every time, in a fresh workspace or a reused one", T, float,
                   bfloat16) {
  const t::matrix<T> data = tc::rounded<T>(t::random_matrix<float>(model_size, 1, 60));
  backend::workspace first, second;
  const projected_model<T> once = project_model(data, model.size(), first);
  check_same_bits(once, project_model(data, model.size(), second));
  check_same_bits(once, project_model(data, model.size(), first));
}

// A workspace sized by a small call, then grown by a larger one, then used for the small one
// again must give what fresh workspaces give.
TEST_CASE("a workspace is reused across growing and shrinking calls") {
  const t::matrix<float> data = t::random_matrix<float>(model_size, 1, 61);
  backend::workspace reused;
  for (const std::size_t blocks : {std::size_t{3}, model.size(), std::size_t{3}, std::size_t{8}}) {
    CAPTURE(blocks);
    backend::workspace fresh;
    check_same_bits(project_model(data, blocks, reused), project_model(data, blocks, fresh));
  }
}

namespace {

/// Keeps a stream busy for about `cycles` clock ticks.
__global__ void spin(long long cycles) {
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
}

}  // namespace

// The gradient is written by work queued on another stream, which the projection's stream waits
// for through an event: every step of the projection (its memsets, copies, kernels and GEMMs) must
// run in its own stream's order, none on the legacy default stream.
TEST_CASE("a projection on a non-blocking stream runs after the work its stream waits for") {
  cudaStream_t producer = nullptr, consumer = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&producer, cudaStreamNonBlocking) == cudaSuccess);
  REQUIRE(cudaStreamCreateWithFlags(&consumer, cudaStreamNonBlocking) == cudaSuccess);
  cudaEvent_t written = nullptr;
  REQUIRE(cudaEventCreateWithFlags(&written, cudaEventDisableTiming) == cudaSuccess);
  {
    ogpsa::cuda::execution on(consumer);
    const t::matrix<float> data = t::random_matrix<float>(model_size, 1, 62);
    backend::workspace expected_ws;
    const projected_model<float> expected = project_model(data, model.size(), expected_ws, on);
    // The same call, with the gradient uploaded late on the producer stream.
    device_model<float> late(t::matrix<float>::Zero(model_size, 1), model.size(), on);
    spin<<<1, 1, 0, producer>>>(200'000'000);  // about 0.1 s
    REQUIRE(cudaMemcpyAsync(late.gradient.data(), data.data(), late.gradient.bytes(), cudaMemcpyHostToDevice, producer) ==
            cudaSuccess);
    REQUIRE(cudaEventRecord(written, producer) == cudaSuccess);
    REQUIRE(cudaStreamWaitEvent(consumer, written) == cudaSuccess);
    backend::workspace ws;
    late.project(on, ws, true);
    const projected_model<float> got = downloaded(on, late);
    check_same_bits(expected, got);
  }
  REQUIRE(cudaStreamSynchronize(producer) == cudaSuccess);
  cudaEventDestroy(written);
  cudaStreamDestroy(producer);
  cudaStreamDestroy(consumer);
}

namespace {

/// Equal bit for bit, except that two NaNs are equal whatever their payloads.
template <class T>
void check_same_values(const t::matrix<T>& expected, const t::matrix<T>& got) {
  REQUIRE(expected.size() == got.size());
  index_t differing = 0;
  for (index_t i = 0; i < expected.size(); ++i) {
    const bool both_nan = std::isnan(static_cast<float>(expected(i))) && std::isnan(static_cast<float>(got(i)));
    if (!both_nan && std::memcmp(&expected(i), &got(i), sizeof(T)) != 0) ++differing;
  }
  CHECK(differing == 0);
}

/// `check_model`'s data with a NaN in a flat block and in a matrix-side one, and a matrix-side
/// block of zeros (unchanged by the projection).
template <class T>
t::matrix<T> data_with_skipped_blocks(std::uint32_t seed) {
  t::matrix<T> data = tc::rounded<T>(t::random_matrix<float>(model_size, 1, seed));
  const T nan(std::numeric_limits<float>::quiet_NaN());
  data(model[3].offset + 10) = nan;
  data(model[6].offset + 100) = nan;
  data.middleRows(model[8].offset, model[8].m * model[8].n).setConstant(T(0.0f));
  return data;
}

}  // namespace

// Without flags to read, every matrix-side block is updated, those not to be changed with zero
// coefficients, and each GEMM call's alpha (the fp16 coefficient scale) is read on the device:
// what is written must be what the call that reads the flags and skips those blocks writes.
TEST_CASE_TEMPLATE("a projection whose flags nobody reads writes what one that reads them writes", T, float,
                   bfloat16, float16) {
  const t::matrix<T> data = data_with_skipped_blocks<T>(66);
  backend::workspace read_ws, unread_ws;
  device_model<T> read(data, model.size(), exec()), unread(data, model.size(), exec());
  read.project(exec(), read_ws, false);
  unread.project(exec(), unread_ws, false, ogpsa::flags_report::unread);
  const projected_model<T> expected = downloaded(exec(), read), got = downloaded(exec(), unread);
  REQUIRE_FALSE(expected.stats[3].finite);  // the data reach the blocks that are skipped
  REQUIRE_FALSE(expected.stats[6].finite);
  REQUIRE_FALSE(expected.stats[8].changed);
  REQUIRE(expected.stats[7].changed);
  check_same_values(expected.written, got.written);
}

// The host queues the projection behind a busy stream and returns; calls queued back to back
// through one workspace (the second rewrites its staging copy, the third runs on another stream)
// each write what they write alone.
TEST_CASE("a projection whose flags nobody reads returns before the device has run it") {
  cudaStream_t first = nullptr, second = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&first, cudaStreamNonBlocking) == cudaSuccess);
  REQUIRE(cudaStreamCreateWithFlags(&second, cudaStreamNonBlocking) == cudaSuccess);
  {
    ogpsa::cuda::execution on_first(first), on_second(second);
    std::vector<t::matrix<float>> data;
    std::vector<projected_model<float>> expected;
    for (std::uint32_t seed : {67u, 68u, 69u}) {
      data.push_back(data_with_skipped_blocks<float>(seed));
      backend::workspace fresh;
      expected.push_back(project_model(data.back(), model.size(), fresh, on_first));
    }
    std::vector<std::unique_ptr<device_model<float>>> models;
    for (const auto& d : data) models.push_back(std::make_unique<device_model<float>>(d, model.size(), on_first));
    backend::workspace ws;
    spin<<<1, 1, 0, first>>>(200'000'000);  // about 0.1 s
    models[0]->project(on_first, ws, false, ogpsa::flags_report::unread);
    CHECK(cudaStreamQuery(first) == cudaErrorNotReady);
    models[1]->project(on_first, ws, false, ogpsa::flags_report::unread);
    models[2]->project(on_second, ws, false, ogpsa::flags_report::unread);
    REQUIRE(cudaStreamSynchronize(second) == cudaSuccess);
    REQUIRE(cudaStreamSynchronize(first) == cudaSuccess);
    for (std::size_t i = 0; i < models.size(); ++i) {
      CAPTURE(i);
      check_same_values(expected[i].written, downloaded(on_first, *models[i]).written);
    }
  }
  cudaStreamDestroy(first);
  cudaStreamDestroy(second);
}

// 16-bit flat blocks of many chunks: the chunk partials are added in fp32 and across chunks in
// double, so the coefficients are as good as one fp32 pass over the block would give.
TEST_CASE_TEMPLATE("16-bit flat blocks of many chunks project to the precision of their type", P,
                   types<bfloat16, float>, types<float16, float>, types<bfloat16, bfloat16>) {
  using G = typename P::G;
  using B = typename P::B;
  constexpr index_t d = 37 * ogpsa::cuda::detail::chunk_elements<G, B> + 11;
  const t::matrix<double> u = tc::widened(tc::rounded<B>(t::random_orthonormal<float>(d, 3, 63)));
  const t::matrix<float> values = t::random_matrix<float>(d, 1, 64) + 30 * u.cast<float>() * t::random_matrix<float>(3, 1, 65);
  const t::matrix<G> data = tc::rounded<G>(values);
  auto gradient = tc::upload(exec(), data);
  auto basis = tc::upload(exec(), tc::rounded<B>(t::matrix<float>(u.cast<float>())));
  std::vector<ogpsa::projection_task<tc::device_matrix<B>, backend::ref<G>>> tasks{
      {&basis, block_view<G, ogpsa::cuda_memory_tag>(gradient.data(), {0, d, 1, false, family::flat, 3}), {}}};
  backend::workspace ws;
  backend::project_all(exec(), std::span(tasks), ogpsa::orthogonal{}, ws, true);
  const t::matrix<double> before = tc::widened(data), after = tc::widened(tc::download(exec(), gradient));
  CHECK(tasks[0].stats.coefficient_sq == doctest::Approx((u.transpose() * before).squaredNorm()).epsilon(1e-5));
  CHECK((u.transpose() * after).norm() < 0x1p-6 * (u.transpose() * before).norm());
}

namespace {

/// x_i = 1 + (-1)^i.
__global__ void fill_alternating(float* x, index_t n) {
  for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < n; i += index_t{gridDim.x} * blockDim.x)
    x[i] = i % 2 == 0 ? 2.0f : 0.0f;
}

__global__ void fill_constant(float* x, index_t n, float value) {
  for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < n; i += index_t{gridDim.x} * blockDim.x)
    x[i] = value;
}

/// Counts the elements farther than `tolerance` from (-1)^i.
__global__ void count_wrong(const float* x, index_t n, float tolerance, unsigned long long* wrong) {
  for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < n; i += index_t{gridDim.x} * blockDim.x)
    if (fabsf(x[i] - (i % 2 == 0 ? 1.0f : -1.0f)) > tolerance) atomicAdd(wrong, 1ull);
}

}  // namespace

// Element indices beyond 2^31 must not wrap anywhere (chunk counts, offsets, packet indices).
// x = 1 + (-1)^i against u = 1 / sqrt(d) leaves exactly (-1)^i. Needs about 17 GB of free device
// memory and is skipped with a message otherwise.
// A gradient inside a flat buffer starts wherever the tensor before it ends. Its reduction
// loads the aligned packets around it and shifts them across lanes; each thread still adds the
// same elements in the same order, so the coefficients, and what is written, are those of the
// same gradient on a packet boundary, bit for bit.
TEST_CASE_TEMPLATE("a flat gradient between packet boundaries projects as one on a boundary", T, float, bfloat16) {
  constexpr int width = ogpsa::cuda::detail::packet_width<T, T>;
  constexpr index_t d = 5 * ogpsa::cuda::detail::chunk_elements<T, T> + 3 * width;  // a partial chunk and warp
  const t::matrix<T> data = tc::rounded<T>(t::random_matrix<float>(d + width, 1, 70));
  auto basis = tc::upload(exec(), tc::rounded<T>(t::random_orthonormal<float>(d, 3, 71)));
  const auto project_at = [&](index_t offset) {
    t::matrix<T> shifted = t::matrix<T>::Zero(d + width, 1);
    shifted.middleRows(offset, d) = data.topRows(d);
    auto gradient = tc::upload(exec(), shifted);
    std::vector<ogpsa::projection_task<tc::device_matrix<T>, backend::ref<T>>> tasks{
        {&basis, block_view<T, ogpsa::cuda_memory_tag>(gradient.data(), {offset, d, 1, false, family::flat, 3}), {}}};
    backend::workspace ws;
    backend::project_all(exec(), std::span(tasks), ogpsa::orthogonal{}, ws, true);
    CHECK(tasks[0].stats.changed);
    return std::pair{t::matrix<T>(tc::download(exec(), gradient).middleRows(offset, d)), tasks[0].stats};
  };
  const auto [aligned, aligned_stats] = project_at(0);
  for (index_t offset = 1; offset < width; ++offset) {
    CAPTURE(offset);
    const auto [got, stats] = project_at(offset);
    CHECK(std::memcmp(got.data(), aligned.data(), static_cast<std::size_t>(d) * sizeof(T)) == 0);
    CHECK(stats.coefficient_sq == aligned_stats.coefficient_sq);
    CHECK(stats.gradient_sq == aligned_stats.gradient_sq);
  }
}

TEST_CASE("large: a flat block of more than 2^31 elements projects correctly") {
  constexpr index_t d = (index_t{1} << 31) + (index_t{1} << 20);
  std::size_t free_bytes = 0, total_bytes = 0;
  REQUIRE(cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess);
  const std::size_t needed = 2 * static_cast<std::size_t>(d) * sizeof(float) + (std::size_t{1} << 30);
  if (free_bytes < needed) {
    MESSAGE("SKIPPED: needs " << needed << " bytes of free device memory, " << free_bytes << " are free");
    return;
  }
  tc::device_matrix<float> gradient(d, 1, exec().stream()), basis(d, 1, exec().stream());
  fill_alternating<<<4096, 256, 0, exec().stream()>>>(gradient.data(), d);
  fill_constant<<<4096, 256, 0, exec().stream()>>>(basis.data(), d, static_cast<float>(1 / std::sqrt(static_cast<double>(d))));
  REQUIRE(cudaGetLastError() == cudaSuccess);
  std::vector<ogpsa::projection_task<tc::device_matrix<float>, backend::ref<float>>> tasks{
      {&basis, block_view<float, ogpsa::cuda_memory_tag>(gradient.data(), {0, d, 1, false, family::flat, 1}), {}}};
  backend::workspace ws;
  backend::project_all(exec(), std::span(tasks), ogpsa::orthogonal{}, ws, true);
  CHECK(tasks[0].stats.changed);
  CHECK(tasks[0].stats.coefficient_sq == doctest::Approx(static_cast<double>(d)).epsilon(1e-5));
  unsigned long long* wrong = nullptr;
  REQUIRE(cudaMalloc(&wrong, sizeof(unsigned long long)) == cudaSuccess);
  REQUIRE(cudaMemsetAsync(wrong, 0, sizeof(unsigned long long), exec().stream()) == cudaSuccess);
  count_wrong<<<4096, 256, 0, exec().stream()>>>(gradient.data(), d, 1e-4f, wrong);
  unsigned long long seen = 0;
  REQUIRE(cudaMemcpyAsync(&seen, wrong, sizeof(seen), cudaMemcpyDeviceToHost, exec().stream()) == cudaSuccess);
  exec().synchronize();
  cudaFree(wrong);
  CHECK(seen == 0);
}
