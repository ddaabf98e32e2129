// Device projection throughput against the device's own copy bandwidth: a device-to-device copy
// (the roofline), flat and matrix-side blocks of the CPU suite's shapes, and whole models in one
// call against one block of the same total size. Rates count the minimal traffic: a flat rank-k
// projection reads g and U, then reads g and U and writes g, (3 + 2k) * d elements; a
// matrix-side one reads G twice and writes it once, plus the basis twice.
#include <span>
#include <string>
#include <vector>

#include "models.hpp"
#include "support.cuh"

namespace {

using ogpsa::bfloat16;
using ogpsa::float16;
using ogpsa::index_t;
using ogpsa::cuda::backend;
namespace bc = ogpsa::bench::cuda;

void device_copy(benchmark::State& state) {
  const auto n = static_cast<index_t>(state.range(0));
  bc::execution exec;
  auto a = bc::random_matrix<float>(exec, n, 1, 1);
  bc::device_matrix<float> b(n, 1, exec.stream());
  bc::time_on_device(state, exec, [&] {
    OGPSA_CUDA_CHECK("bench", cudaMemcpyAsync(b.data(), a.data(), a.bytes(), cudaMemcpyDeviceToDevice, exec.stream()));
  });
  ogpsa::bench::set_traffic(state, 2.0 * static_cast<double>(a.bytes()), static_cast<double>(n));
}

template <class G, class B>
void flat_projection(benchmark::State& state) {
  const auto d = static_cast<index_t>(state.range(0));
  const auto k = static_cast<index_t>(state.range(1));
  bc::execution exec;
  auto g = bc::random_matrix<G>(exec, d, 1, 2);
  auto u = bc::disjoint_basis<B>(exec, d, k, 3);
  ogpsa::projection_task<backend::matrix<B>, backend::ref<G>> task{&u, {g.data(), d, 1, 1, d}, {}};
  backend::workspace ws;
  bc::time_on_device(state, exec, [&] { backend::project_all(exec, std::span(&task, 1), ogpsa::orthogonal{}, ws, false); });
  ogpsa::bench::set_traffic(state, static_cast<double>(d) * static_cast<double>(3 * sizeof(G) + 2 * k * sizeof(B)),
                              static_cast<double>(d));
}

template <class G, class B>
void matrix_projection(benchmark::State& state) {
  const auto m = static_cast<index_t>(state.range(0));
  const auto n = static_cast<index_t>(state.range(1));
  const auto k = static_cast<index_t>(state.range(2));
  bc::execution exec(nullptr, state.range(3) != 0 ? ogpsa::cuda::matrix_math::tf32 : ogpsa::cuda::matrix_math::exact);
  auto g = bc::random_matrix<G>(exec, m, n, 4);
  auto u = bc::disjoint_basis<B>(exec, m, k, 5);
  ogpsa::projection_task<backend::matrix<B>, backend::ref<G>> task{&u, {g.data(), m, n, 1, m}, {}};
  backend::workspace ws;
  bc::time_on_device(state, exec, [&] { backend::project_all(exec, std::span(&task, 1), ogpsa::orthogonal{}, ws, false); });
  ogpsa::bench::set_traffic(state, 3.0 * static_cast<double>(m * n * sizeof(G)) + 2.0 * static_cast<double>(m * k * sizeof(B)),
                              static_cast<double>(m * n));
}

/// A model's gradients in one buffer (each tensor 256-byte aligned, as framework allocators
/// place them) with a basis per tensor: flat rank-k blocks, or, with `matrix_k` > 0, input-space
/// (right-family) bases of rank matrix_k for the weight matrices.
template <class G, class B>
struct model_blocks {
  bc::device_matrix<G> gradients;
  std::vector<bc::device_matrix<B>> bases;
  std::vector<ogpsa::projection_task<backend::matrix<B>, backend::ref<G>>> tasks;
  double traffic = 0;

  model_blocks(bc::execution& exec, const std::vector<bc::tensor_shape>& shapes, index_t k, index_t matrix_k) {
    constexpr index_t align = 256 / sizeof(G);
    index_t total = 0;
    std::vector<index_t> offsets;
    for (const bc::tensor_shape& s : shapes) {
      offsets.push_back(total);
      total += (s.size() + align - 1) / align * align;
    }
    gradients = bc::random_matrix<G>(exec, total, 1, 6);
    bases.reserve(shapes.size());
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      const bc::tensor_shape& s = shapes[i];
      G* x = gradients.data() + offsets[i];
      const bool matrix = matrix_k > 0 && s.cols > 1;
      // A row-major (out x in) weight seen from its input space: the column-major in x out target.
      const backend::ref<G> target = matrix ? backend::ref<G>{x, s.cols, s.rows, 1, s.cols} : backend::ref<G>{x, s.size(), 1, 1, s.size()};
      bases.push_back(bc::disjoint_basis<B>(exec, target.rows, matrix ? matrix_k : k, 7 + i));
      tasks.push_back({&bases.back(), target, {}});
      traffic += matrix ? 3.0 * static_cast<double>(s.size() * sizeof(G)) + 2.0 * static_cast<double>(bases.back().bytes())
                        : static_cast<double>(s.size()) * static_cast<double>(3 * sizeof(G) + 2 * k * sizeof(B));
    }
  }
};

const bc::decoder& model_of(const benchmark::State& state) {
  return state.range(0) == 0 ? bc::decoder_100m : bc::decoder_1b;
}

/// Every tensor of a model in one project_all call (what projector::project() issues).
template <class G, class B>
void whole_model(benchmark::State& state) {
  const std::vector<bc::tensor_shape> shapes = bc::tensors(model_of(state));
  bc::execution exec;
  model_blocks<G, B> model(exec, shapes, state.range(1), state.range(2));
  backend::workspace ws;
  bc::time_on_device(state, exec, [&] { backend::project_all(exec, std::span(model.tasks), ogpsa::orthogonal{}, ws, false); });
  ogpsa::bench::set_traffic(state, model.traffic, static_cast<double>(bc::parameters(shapes)));
  state.counters["parameters"] = static_cast<double>(bc::parameters(shapes));
  state.counters["blocks"] = static_cast<double>(shapes.size());
  state.SetLabel(model_of(state).name);
}

/// One flat block as large as the whole model: the target the many-block call is held to.
template <class G, class B>
void one_block(benchmark::State& state) {
  const index_t d = bc::parameters(bc::tensors(model_of(state)));
  const auto k = static_cast<index_t>(state.range(1));
  bc::execution exec;
  auto g = bc::random_matrix<G>(exec, d, 1, 8);
  auto u = bc::disjoint_basis<B>(exec, d, k, 9);
  ogpsa::projection_task<backend::matrix<B>, backend::ref<G>> task{&u, {g.data(), d, 1, 1, d}, {}};
  backend::workspace ws;
  bc::time_on_device(state, exec, [&] { backend::project_all(exec, std::span(&task, 1), ogpsa::orthogonal{}, ws, false); });
  ogpsa::bench::set_traffic(state, static_cast<double>(d) * static_cast<double>(3 * sizeof(G) + 2 * k * sizeof(B)),
                              static_cast<double>(d));
  state.SetLabel(model_of(state).name);
}

/// Training steps as a trainer queues them: work standing in for the backward pass (a copy of
/// `backward` bytes), then the whole model's projection, `steps` times before one wait. With the
/// stats read (argument 3 = 0) every projection makes the host wait for the device, which then
/// idles while the host launches what follows; unread (1), the host queues every step ahead. The
/// difference in wall time per step is what that round trip costs.
template <class G, class B>
void queued_steps(benchmark::State& state) {
  constexpr int steps = 10;
  constexpr index_t backward = 64 << 20;
  const std::vector<bc::tensor_shape> shapes = bc::tensors(model_of(state));
  bc::execution exec;
  model_blocks<G, B> model(exec, shapes, state.range(1), state.range(2));
  auto from = bc::random_matrix<float>(exec, backward / 4, 1, 10);
  bc::device_matrix<float> to(backward / 4, 1, exec.stream());
  const ogpsa::flags_report flags = state.range(3) == 0 ? ogpsa::flags_report::read : ogpsa::flags_report::unread;
  backend::workspace ws;
  for (auto _ : state) {
    for (int s = 0; s < steps; ++s) {
      OGPSA_CUDA_CHECK("bench", cudaMemcpyAsync(to.data(), from.data(), from.bytes(), cudaMemcpyDeviceToDevice, exec.stream()));
      backend::project_all(exec, std::span(model.tasks), ogpsa::orthogonal{}, ws, false, flags);
    }
    exec.synchronize();
  }
  state.SetItemsProcessed(state.iterations() * steps);  // steps per second
  state.SetLabel(std::string(model_of(state).name) + (flags == ogpsa::flags_report::read ? ", stats read" : ", unread"));
}

constexpr int mega = 1 << 20;

}  // namespace

BENCHMARK(device_copy)->Arg(mega)->Arg(16 * mega)->Arg(64 * mega)->Arg(256 * mega)->UseManualTime()->Unit(benchmark::kMicrosecond);

#define OGPSA_FLAT(G, B) \
  BENCHMARK_TEMPLATE(flat_projection, G, B)->ArgsProduct({{mega, 16 * mega, 64 * mega}, {1, 2, 8, 32}})->UseManualTime()->Unit(benchmark::kMicrosecond)
OGPSA_FLAT(float, float);
OGPSA_FLAT(bfloat16, float);
OGPSA_FLAT(bfloat16, bfloat16);
OGPSA_FLAT(float16, float);
OGPSA_FLAT(float16, float16);

#define OGPSA_MATRIX(G, B, TF32)                                                                           \
  BENCHMARK_TEMPLATE(matrix_projection, G, B)                                                             \
      ->ArgsProduct({{4096}, {4096, 11008}, {8, 64}, {TF32}})->ArgsProduct({{11008}, {4096}, {8, 64}, {TF32}}) \
      ->UseManualTime()->Unit(benchmark::kMicrosecond)
OGPSA_MATRIX(float, float, 0);
OGPSA_MATRIX(float, float, 1);
OGPSA_MATRIX(bfloat16, float, 0);
OGPSA_MATRIX(bfloat16, bfloat16, 0);

// Arguments: model (0: 100M, 1: 1B), flat rank, matrix-side rank (0: every block flat).
#define OGPSA_MODEL(G, B)                                                                                      \
  BENCHMARK_TEMPLATE(whole_model, G, B)->ArgsProduct({{0, 1}, {1, 2}, {0}})->UseManualTime()->Unit(benchmark::kMicrosecond); \
  BENCHMARK_TEMPLATE(one_block, G, B)->ArgsProduct({{0, 1}, {1, 2}, {0}})->UseManualTime()->Unit(benchmark::kMicrosecond)
OGPSA_MODEL(float, float);
OGPSA_MODEL(bfloat16, float);
OGPSA_MODEL(bfloat16, bfloat16);
BENCHMARK_TEMPLATE(whole_model, bfloat16, float)->Args({1, 1, 64})->UseManualTime()->Unit(benchmark::kMicrosecond);
// Arguments: model, flat rank, matrix-side rank, stats read (0) or not (1).
BENCHMARK_TEMPLATE(queued_steps, bfloat16, float)->ArgsProduct({{0}, {1}, {0, 64}, {0, 1}})->UseRealTime()->Unit(benchmark::kMicrosecond);
