// Estimators on the device against cuSOLVER's own SVDs of the same snapshots (d x m, tall and
// skinny): ogpsa's exact_svd (Gram matrix in fp64 on the device, m x m eigen-decomposition on
// the host), randomized_svd, single_pass_svd and frequent_directions on the device, cuSOLVER's gesvd
// (bidiagonalization) and gesvdj (Jacobi), and the all-device route a user would sketch (Gram,
// syevd, one GEMM). Times include the host work each needs.
#include <limits>
#include <vector>

#include <cusolverDn.h>

#include "support.cuh"

namespace {

using ogpsa::index_t;
using ogpsa::cuda::backend;
namespace bc = ogpsa::bench::cuda;

constexpr index_t snapshots = 64, rank = 8;

/// A size for cuSOLVER's 32-bit SVD routines (the benchmark's sizes all fit).
int as_int(index_t v) {
  OGPSA_REQUIRE(v <= std::numeric_limits<int>::max(), invalid_argument, "bench",
                "size " << v << " exceeds cuSOLVER's 32-bit limit");
  return static_cast<int>(v);
}

void exact_svd_estimate(benchmark::State& state) {
  const auto d = static_cast<index_t>(state.range(0));
  bc::execution exec;
  const auto data = bc::random_matrix<float>(exec, d, snapshots, 10);
  const ogpsa::exact_svd params{.rank = rank};
  bc::time_on_device(state, exec, [&] {
    ogpsa::exact_svd_pass<backend, float> estimator(params, d, "w");
    for (index_t j = 0; j < snapshots; j += 8)
      estimator.feed(exec, backend::ref<const float>{data.col(j), d, 8, 1, d}, 0);
    benchmark::DoNotOptimize(estimator.finish(exec));
  });
}

/// The streaming and randomized SVD estimators on the device, fed like exact_svd above (8 snapshots per feed).
template <class Estimator>
void svd_estimate(benchmark::State& state) {
  const auto d = static_cast<index_t>(state.range(0));
  bc::execution exec;
  const auto data = bc::random_matrix<float>(exec, d, snapshots, 10);
  const Estimator params{.rank = rank};
  bc::time_on_device(state, exec, [&] {
    typename Estimator::template pass<backend, float> estimator(params, d, "w");
    for (index_t j = 0; j < snapshots; j += 8)
      estimator.feed(exec, backend::ref<const float>{data.col(j), d, 8, 1, d}, 0);
    benchmark::DoNotOptimize(estimator.finish(exec));
  });
}

void mean_gradient_estimate(benchmark::State& state) {
  const auto d = static_cast<index_t>(state.range(0));
  bc::execution exec;
  const auto batches = bc::random_matrix<float>(exec, d, 8, 11);
  bc::time_on_device(state, exec, [&] {
    ogpsa::mean_gradient_pass<backend, float> estimator(ogpsa::mean_gradient{}, d, "w");
    for (index_t j = 0; j < 8; ++j) estimator.feed(exec, backend::ref<const float>{batches.col(j), d, 1, 1, d}, j / 4);
    benchmark::DoNotOptimize(estimator.finish(exec));
  });
}

void cusolver_gesvd(benchmark::State& state) {
  const auto d = static_cast<index_t>(state.range(0));
  bc::execution exec;
  const auto data = bc::random_matrix<float>(exec, d, snapshots, 10);
  bc::device_matrix<float> a(d, snapshots, exec.stream()), s(snapshots, 1, exec.stream()), u(d, snapshots, exec.stream());
  cusolverDnParams_t params = nullptr;
  OGPSA_CUDA_CHECK("bench", cusolverDnCreateParams(&params));
  std::size_t device_bytes = 0, host_bytes = 0;
  OGPSA_CUDA_CHECK("bench", cusolverDnXgesvd_bufferSize(exec.solver(), params, 'S', 'N', d, snapshots, CUDA_R_32F, a.data(), d,
                                                        CUDA_R_32F, s.data(), CUDA_R_32F, u.data(), d, CUDA_R_32F, nullptr,
                                                        snapshots, CUDA_R_32F, &device_bytes, &host_bytes));
  ogpsa::cuda::detail::device_buffer work(device_bytes, exec.stream(), "bench");
  std::vector<char> host_work(host_bytes);
  ogpsa::cuda::detail::device_buffer info(sizeof(int), exec.stream(), "bench");
  bc::time_on_device(state, exec, [&] {
    a = data;  // gesvd overwrites its input
    OGPSA_CUDA_CHECK("bench", cusolverDnXgesvd(exec.solver(), params, 'S', 'N', d, snapshots, CUDA_R_32F, a.data(), d,
                                               CUDA_R_32F, s.data(), CUDA_R_32F, u.data(), d, CUDA_R_32F, nullptr,
                                               snapshots, CUDA_R_32F, work.data(), device_bytes, host_work.data(),
                                               host_bytes, static_cast<int*>(info.data())));
  });
  (void)cusolverDnDestroyParams(params);
}

void cusolver_gesvdj(benchmark::State& state) {
  const auto d = static_cast<index_t>(state.range(0));
  bc::execution exec;
  const auto data = bc::random_matrix<float>(exec, d, snapshots, 10);
  bc::device_matrix<float> a(d, snapshots, exec.stream()), s(snapshots, 1, exec.stream()), u(d, snapshots, exec.stream()),
      v(snapshots, snapshots, exec.stream());
  gesvdjInfo_t params = nullptr;
  OGPSA_CUDA_CHECK("bench", cusolverDnCreateGesvdjInfo(&params));
  const int m = as_int(d), n = static_cast<int>(snapshots);
  int lwork = 0;
  OGPSA_CUDA_CHECK("bench", cusolverDnSgesvdj_bufferSize(exec.solver(), CUSOLVER_EIG_MODE_VECTOR, 1, m, n, a.data(), m, s.data(),
                                                         u.data(), m, v.data(), n, &lwork, params));
  bc::device_matrix<float> work(lwork, 1, exec.stream());
  ogpsa::cuda::detail::device_buffer info(sizeof(int), exec.stream(), "bench");
  bc::time_on_device(state, exec, [&] {
    a = data;
    OGPSA_CUDA_CHECK("bench", cusolverDnSgesvdj(exec.solver(), CUSOLVER_EIG_MODE_VECTOR, 1, m, n, a.data(), m, s.data(), u.data(),
                                                m, v.data(), n, work.data(), lwork, static_cast<int*>(info.data()), params));
  });
  (void)cusolverDnDestroyGesvdjInfo(params);
}

/// All on the device: G = A^T A (fp32), syevd of G, U = A V (scaled by 1/s on the host's side
/// of a real estimator; omitted here as it is O(d k)).
void cusolver_gram_syevd(benchmark::State& state) {
  const auto d = static_cast<index_t>(state.range(0));
  bc::execution exec;
  const auto data = bc::random_matrix<float>(exec, d, snapshots, 10);
  bc::device_matrix<float> g(snapshots, snapshots, exec.stream()), w(snapshots, 1, exec.stream()), u(d, snapshots, exec.stream());
  cusolverDnParams_t params = nullptr;
  OGPSA_CUDA_CHECK("bench", cusolverDnCreateParams(&params));
  std::size_t device_bytes = 0, host_bytes = 0;
  OGPSA_CUDA_CHECK("bench", cusolverDnXsyevd_bufferSize(exec.solver(), params, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER,
                                                        snapshots, CUDA_R_32F, g.data(), snapshots, CUDA_R_32F, w.data(),
                                                        CUDA_R_32F, &device_bytes, &host_bytes));
  ogpsa::cuda::detail::device_buffer work(device_bytes, exec.stream(), "bench");
  std::vector<char> host_work(host_bytes);
  ogpsa::cuda::detail::device_buffer info(sizeof(int), exec.stream(), "bench");
  bc::time_on_device(state, exec, [&] {
    ogpsa::cuda::detail::syrk<float>(exec, CUBLAS_OP_T, snapshots, d, 1.0f, data.data(), d, 0.0f, g.data(), snapshots, "bench");
    OGPSA_CUDA_CHECK("bench", cusolverDnXsyevd(exec.solver(), params, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, snapshots,
                                               CUDA_R_32F, g.data(), snapshots, CUDA_R_32F, w.data(), CUDA_R_32F, work.data(),
                                               device_bytes, host_work.data(), host_bytes, static_cast<int*>(info.data())));
    ogpsa::cuda::detail::gemm<float>(exec, CUBLAS_OP_N, CUBLAS_OP_N, d, rank, snapshots, 1.0f, data.data(), d,
                                     g.col(snapshots - rank), snapshots, 0.0f, u.data(), d, "bench");
  });
  (void)cusolverDnDestroyParams(params);
}

}  // namespace

BENCHMARK(exact_svd_estimate)->Arg(1 << 20)->Arg(1 << 22)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(svd_estimate, ogpsa::randomized_svd)->Arg(1 << 20)->Arg(1 << 22)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(svd_estimate, ogpsa::single_pass_svd)->Arg(1 << 20)->Arg(1 << 22)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(svd_estimate, ogpsa::frequent_directions)->Arg(1 << 20)->Arg(1 << 22)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(cusolver_gram_syevd)->Arg(1 << 20)->Arg(1 << 22)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(cusolver_gesvd)->Arg(1 << 20)->Arg(1 << 22)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(cusolver_gesvdj)->Arg(1 << 20)->Arg(1 << 22)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(mean_gradient_estimate)->Arg(1 << 24)->UseManualTime()->Unit(benchmark::kMillisecond);
