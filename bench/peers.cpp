// The peers a user would otherwise write, on the same data as ogpsa: the straightforward Eigen
// expression, and the published procedure (include/ogpsa/PUBLISHED.md).
#include <Eigen/Core>

#include "bench.hpp"

namespace ogpsa::bench {
namespace {

/// The basis as Eigen sees it: float, or Eigen's own bfloat16 (the same bits as ogpsa's).
template <class B>
auto eigen_basis(const B* data, index_t rows, index_t cols) {
  using scalar = std::conditional_t<std::is_same_v<B, bfloat16>, Eigen::bfloat16, B>;
  return Eigen::Map<const Eigen::Matrix<scalar, Eigen::Dynamic, Eigen::Dynamic>>(
      reinterpret_cast<const scalar*>(data), rows, cols);
}

/// g <- g - U (U^T g), as one writes it with Eigen (a 16-bit basis cast to float).
template <class U>
void eigen_project(float* gradient, const U& u, Eigen::VectorXf& coefficients) {
  Eigen::Map<Eigen::VectorXf> g(gradient, u.rows());
  coefficients.noalias() = u.template cast<float>().transpose() * g;
  g.noalias() -= u.template cast<float>() * coefficients;
}

template <class B>
void eigen_flat(benchmark::State& state) {
  const index_t d = state.range(0), k = state.range(1);
  auto& data = shared_data<flat_case<B>>(flat_case<B>::key(d, k), d, k);
  Eigen::VectorXf coefficients(k);
  for (auto _ : state) {
    auto& c = data.next();
    eigen_project(c.gradient.data(), eigen_basis(c.basis().data(), d, k), coefficients);
    benchmark::ClobberMemory();
  }
  set_traffic(state, flat_traffic<float, B>(d, k), static_cast<double>(d));
}

void eigen_matrix(benchmark::State& state) {
  const index_t m = state.range(0), n = state.range(1), k = state.range(2);
  auto& data = shared_data<matrix_case>(matrix_case::key(m, n, k), m, n, k);
  Eigen::MatrixXf coefficients(k, n);
  for (auto _ : state) {
    auto& c = data.next();
    Eigen::Map<Eigen::MatrixXf> g(c.gradient.data(), m, n);
    const Eigen::MatrixXf& u = c.basis();
    coefficients.noalias() = u.transpose() * g;
    g.noalias() -= u * coefficients;
    benchmark::ClobberMemory();
  }
  set_traffic(state, matrix_traffic<float, float>(m, n, k), static_cast<double>(m * n));
}

template <class B>
void eigen_model(benchmark::State& state) {
  const index_t k = state.range(0);
  auto& data = shared_data<model_case<B>>(model_case<B>::key(k), k);
  Eigen::VectorXf coefficients(k);
  for (auto _ : state) {
    auto& c = data.next();
    for (std::size_t i = 0; i < c.tensors.size(); ++i)
      eigen_project(c.gradient.data() + c.offsets[i], eigen_basis(c.basis(i).data(), c.tensors[i].size(), k),
                    coefficients);
    benchmark::ClobberMemory();
  }
  const index_t total = total_size(decoder_tensors());
  set_traffic(state, flat_traffic<float, B>(total, k), static_cast<double>(total));
}

/// The published procedure for one tensor (include/ogpsa/PUBLISHED.md): copy its directions in
/// from a separate host buffer, converted to the gradient's dtype; one direction b:
/// g -= (g.b / (b.b + 1e-8)) b; two: orthonormalize them by classical Gram-Schmidt on every call,
/// then subtract both components, every dot product in the gradient's dtype.
template <class B>
void published_project(float* gradient, const B* host_basis, index_t d, index_t k, Eigen::MatrixXf& device) {
  device = eigen_basis(host_basis, d, k).template cast<float>();  // the copy in
  Eigen::Map<Eigen::VectorXf> g(gradient, d);
  if (k == 1) {
    const auto b = device.col(0);
    g -= (g.dot(b) / (b.dot(b) + 1e-8f)) * b;
    return;
  }
  auto u1 = device.col(0), u2 = device.col(1);
  u1 /= u1.norm() + 1e-8f;
  u2 -= u2.dot(u1) * u1;
  const float w = u2.norm();
  if (w + 1e-8f < 1e-6f) u2.setZero();
  else u2 /= w + 1e-8f;
  const float c1 = g.dot(u1), c2 = g.dot(u2);
  g -= c1 * u1 + c2 * u2;
}

template <class B>
void published_flat(benchmark::State& state) {
  const index_t d = state.range(0), k = state.range(1);
  auto& data = shared_data<flat_case<B>>(flat_case<B>::key(d, k), d, k);
  Eigen::MatrixXf device(d, k);
  for (auto _ : state) {
    auto& c = data.next();
    published_project(c.gradient.data(), c.basis().data(), d, k, device);
    benchmark::ClobberMemory();
  }
  set_traffic(state, flat_traffic<float, B>(d, k), static_cast<double>(d));
}

template <class B>
void published_model(benchmark::State& state) {
  const index_t k = state.range(0);
  auto& data = shared_data<model_case<B>>(model_case<B>::key(k), k);
  Eigen::MatrixXf device;
  for (auto _ : state) {
    auto& c = data.next();
    for (std::size_t i = 0; i < c.tensors.size(); ++i)
      published_project(c.gradient.data() + c.offsets[i], c.basis(i).data(), c.tensors[i].size(), k, device);
    benchmark::ClobberMemory();
  }
  const index_t total = total_size(decoder_tensors());
  set_traffic(state, flat_traffic<float, B>(total, k), static_cast<double>(total));
}

template <class B>
bool add_peers(const std::string& variant) {
  const std::vector<std::vector<std::int64_t>> model_args{{model_rank}};
  return add({"flat", "eigen", variant, eigen_flat<B>, flat_args(), flat_arg_names}) &&
         add({"flat", "published", variant, published_flat<B>, flat_args(2), flat_arg_names}) &&
         add({"model", "eigen", variant, eigen_model<B>, model_args, model_arg_names}) &&
         add({"model", "published", variant, published_model<B>, model_args, model_arg_names});
}

const bool registered = add_peers<float>("f32") && add_peers<bfloat16>("bf16") &&
                        add({"matrix", "eigen", "f32", eigen_matrix, matrix_args(), matrix_arg_names});

}  // namespace
}  // namespace ogpsa::bench
