// Subspace estimators against exact SVD peers, each reporting its time and its accuracy: the
// largest principal-angle sine between its top-k basis and an fp64 reference (counter max_sine),
// with the peak memory it added (peak_MiB) and the snapshot bytes it read per second.
//
//   tall_skinny/<d>:  d x 32 snapshots fed one flat gradient at a time, k = 8, a rank-8 signal
//                     (singular values 0.8^i) plus 1% noise (|N|_F = 0.01 |S|_F). Reference: the
//                     Gram route in double (error ~ eps_64 (s_1/s_8)^2 ~ 1e-15).
//   matrix_side/<m>/<n>:  one m x n gradient seen as a left block (n columns of length m), k = 32,
//                     decaying spectrum s_i = 0.9^i over rank 256. Reference: the planted fp64
//                     singular vectors; storing the data in float moves the exact subspace by
//                     about eps_32 |A| / (s_32 - s_33) ~ 3e-5.
//
// The smallest size of each runs in the test suite's smoke run; the peers are Eigen's BDCSVD and,
// when LibTorch is found, torch::linalg::svd (both thin, on the same float data).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <utility>

#include <Eigen/QR>
#include <Eigen/SVD>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <ogpsa/ogpsa.hpp>

#include "bench.hpp"

#ifdef OGPSA_BENCH_TORCH
#include <torch/torch.h>
#endif

namespace {

using ogpsa::index_t;
using matrix_f = Eigen::MatrixXf;
using matrix_d = Eigen::MatrixXd;

/// Data of one shape and its reference basis, generated once per process.
struct problem {
  matrix_f a;
  matrix_d reference;  ///< exact top-k left singular vectors, fp64
  index_t k;
};

matrix_d orthonormal(index_t rows, index_t cols, std::uint64_t seed) {
  const matrix_d g = ogpsa::detail::gaussian_matrix(rows, cols, seed);
  return Eigen::HouseholderQR<matrix_d>(g).householderQ() * matrix_d::Identity(rows, cols);
}

/// Top-k left singular vectors of a tall float matrix through its Gram matrix in double.
matrix_d gram_reference(const matrix_f& a, index_t k) {
  matrix_d g = matrix_d::Zero(a.cols(), a.cols());
  for (index_t r = 0; r < a.rows(); r += 4096) {
    const matrix_d panel = a.middleRows(r, std::min<index_t>(4096, a.rows() - r)).cast<double>();
    g.selfadjointView<Eigen::Lower>().rankUpdate(panel.transpose());
  }
  const Eigen::SelfAdjointEigenSolver<matrix_d> eig(g);  // reads the lower triangle
  const matrix_d v = eig.eigenvectors().rightCols(k).rowwise().reverse();
  const Eigen::VectorXd s = eig.eigenvalues().tail(k).reverse().cwiseSqrt();
  matrix_d u = matrix_d::Zero(a.rows(), k);
  for (index_t r = 0; r < a.rows(); r += 4096) {
    const index_t n = std::min<index_t>(4096, a.rows() - r);
    u.middleRows(r, n) = a.middleRows(r, n).cast<double>() * v * s.cwiseInverse().asDiagonal();
  }
  return u;
}

matrix_f gaussian_float(index_t rows, index_t cols, std::uint64_t seed) {
  matrix_f m(rows, cols);
  ogpsa::detail::gaussian_panel(seed, 0, rows, cols, m.data(), rows);
  return m;
}

const problem& tall_skinny_problem(index_t d) {
  static std::map<index_t, problem> cache;
  if (auto it = cache.find(d); it != cache.end()) return it->second;
  constexpr index_t m = 32, rank = 8;
  Eigen::VectorXd s(rank);
  for (index_t i = 0; i < rank; ++i) s(i) = std::pow(0.8, static_cast<double>(i)) / std::sqrt(static_cast<double>(d));
  const matrix_f mix = (s.asDiagonal() * orthonormal(m, rank, 2).transpose()).cast<float>();
  problem p{gaussian_float(d, rank, 1) * mix, {}, rank};
  const matrix_f noise = gaussian_float(d, m, 3);
  const double scale = 0.01 * p.a.cast<double>().norm() / noise.cast<double>().norm();
  p.a += static_cast<float>(scale) * noise;
  p.reference = gram_reference(p.a, rank);
  return cache.emplace(d, std::move(p)).first->second;
}

const problem& matrix_side_problem(index_t rows, index_t cols) {
  static std::map<std::pair<index_t, index_t>, problem> cache;
  if (auto it = cache.find({rows, cols}); it != cache.end()) return it->second;
  constexpr index_t rank = 256, k = 32;
  Eigen::VectorXf s(rank);
  for (index_t i = 0; i < rank; ++i) s(i) = static_cast<float>(std::pow(0.9, static_cast<double>(i)));
  const matrix_d u = orthonormal(rows, rank, 4);
  const matrix_f v = orthonormal(cols, rank, 5).cast<float>();
  problem p{u.cast<float>() * s.asDiagonal() * v.transpose(), u.leftCols(k), k};
  return cache.emplace(std::pair{rows, cols}, std::move(p)).first->second;
}

/// Resident and peak resident memory of this process in KiB (Linux).
long status_kib(const char* key) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(line.find(':') + 1));
  return 0;
}

/// Returns freed heap memory to the system (so that a method's allocations show in the resident
/// size instead of reusing what an earlier benchmark left) and restarts the peak from here.
long settle_memory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  std::ofstream("/proc/self/clear_refs") << "5";
  return status_kib("VmRSS");
}

double max_principal_sine(const matrix_d& u, const matrix_d& v) {
  const matrix_d residual = v - u * (u.transpose() * v);
  return Eigen::JacobiSVD<matrix_d>(residual).singularValues()(0);
}

/// Runs `method(a, k) -> basis` under the benchmark loop and reports the counters.
template <class Method>
void measure(benchmark::State& state, const problem& p, Method method) {
  matrix_f basis;
  const long before = settle_memory();
  for (auto _ : state) {
    basis = method(p.a, p.k);
    benchmark::DoNotOptimize(basis.data());
  }
  const long peak = status_kib("VmHWM");
  state.counters["max_sine"] = max_principal_sine(basis.cast<double>(), p.reference);
  state.counters["peak_MiB"] = static_cast<double>(std::max(peak - before, 0L)) / 1024;
  // Rate of snapshot bytes read (one pass's worth per estimate, whatever the method re-reads).
  state.SetBytesProcessed(static_cast<std::int64_t>(p.a.size() * sizeof(float)) * state.iterations());
}

/// An ogpsa estimator fed the columns `per_feed` at a time (1: one flat gradient per snapshot).
template <class Estimator>
auto with_estimator(Estimator params, index_t per_feed) {
  return [params, per_feed](const matrix_f& a, index_t) {
    ogpsa::cpu::execution exec;
    typename Estimator::template pass<ogpsa::cpu::backend, float> s(params, a.rows(), "bench");
    for (index_t j = 0; j < a.cols(); j += per_feed) {
      const index_t n = std::min(per_feed, a.cols() - j);
      s.feed(exec, ogpsa::detail::matrix_ref<const float, ogpsa::host_memory_tag>{a.col(j).data(), a.rows(), n, 1, a.rows()}, 0);
    }
    return s.finish(exec).basis;
  };
}

matrix_f eigen_bdcsvd(const matrix_f& a, index_t k) {
  const Eigen::BDCSVD<matrix_f> svd(a, Eigen::ComputeThinU);
  return svd.matrixU().leftCols(k);
}

#ifdef OGPSA_BENCH_TORCH
/// torch::linalg::svd of the same column-major buffer, read as A^T (rows x cols of A^T =
/// cols x rows): A^T = U S V^T, so A's left singular vectors are the first rows of V^T.
matrix_f torch_svd(const matrix_f& a, index_t k) {
  const at::Tensor at = torch::from_blob(const_cast<float*>(a.data()), {a.cols(), a.rows()}, torch::kFloat32);
  const at::Tensor vh = std::get<2>(torch::linalg::svd(at, /*full_matrices=*/false, c10::nullopt));
  const at::Tensor top = vh.slice(0, 0, k).contiguous();
  return Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
             top.data_ptr<float>(), k, a.rows())
      .transpose();
}
#endif

template <class Method>
void tall_skinny(benchmark::State& state, Method method) {
  measure(state, tall_skinny_problem(state.range(0)), method);
}

template <class Method>
void matrix_side(benchmark::State& state, Method method) {
  measure(state, matrix_side_problem(state.range(0), state.range(1)), method);
}

/// Registers `name` on the tall-skinny shapes: the smoke size and 4M x 32.
template <class Method>
void tall(const char* name, Method method) {
  benchmark::RegisterBenchmark(name, [method](benchmark::State& s) { tall_skinny(s, method); })
      ->Arg(1 << 10)
      ->Arg(1 << 22)
      ->ArgName("d")
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

/// Registers `name` on the matrix-side shapes: the smoke size, 2048 x 5632 and, unless it is a
/// slow exact peer, 4096 x 11008.
template <class Method>
void side(const char* name, Method method, bool largest = true) {
  auto* b = benchmark::RegisterBenchmark(name, [method](benchmark::State& s) { matrix_side(s, method); })
                ->Args({1024, 2816})
                ->Args({2048, 5632});
  if (largest) b->Args({4096, 11008});
  b->ArgNames({"m", "n"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

const int registered = [] {
  tall("estimators/exact_svd/tall_skinny", with_estimator(ogpsa::exact_svd{.rank = 8}, 1));
  tall("estimators/randomized_svd/tall_skinny", with_estimator(ogpsa::randomized_svd{.rank = 8}, 1));
  tall("estimators/single_pass_svd/tall_skinny", with_estimator(ogpsa::single_pass_svd{.rank = 8}, 1));
  // Frequent Directions' time-memory trade-off: the least memory (sketch width l = k, blocks of one
  // column, read where they lie: no buffer) costs the most rotations; l = 1.5 k with b = l (a
  // buffer, since the snapshots come one at a time) is the cheapest in products.
  tall("estimators/frequent_directions_l8_b1/tall_skinny", with_estimator(ogpsa::frequent_directions{.rank = 8, .sketch_width = 8, .block = 1}, 1));
  tall("estimators/frequent_directions_l8_b2/tall_skinny", with_estimator(ogpsa::frequent_directions{.rank = 8, .sketch_width = 8, .block = 2}, 1));
  tall("estimators/frequent_directions_l12_b12/tall_skinny", with_estimator(ogpsa::frequent_directions{.rank = 8, .sketch_width = 12, .block = 12}, 1));
  tall("estimators/frequent_directions/tall_skinny", with_estimator(ogpsa::frequent_directions{.rank = 8}, 1));
  tall("estimators/eigen_bdcsvd/tall_skinny", eigen_bdcsvd);
  side("estimators/randomized_svd/matrix_side", with_estimator(ogpsa::randomized_svd{.rank = 32}, 1 << 30));
  side("estimators/single_pass_svd/matrix_side", with_estimator(ogpsa::single_pass_svd{.rank = 32}, 1 << 30));
  side("estimators/frequent_directions/matrix_side", with_estimator(ogpsa::frequent_directions{.rank = 32}, 1 << 30));
  side("estimators/eigen_bdcsvd/matrix_side", eigen_bdcsvd, false);
#ifdef OGPSA_BENCH_TORCH
  tall("estimators/torch_svd/tall_skinny", torch_svd);
  side("estimators/torch_svd/matrix_side", torch_svd, false);
#endif
  return 0;
}();

}  // namespace
