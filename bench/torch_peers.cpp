// LibTorch as a peer, on the same data as ogpsa: the tensor operations (mv/mm/sub_) one writes to
// project a gradient, with a 16-bit basis converted to float first (LibTorch's products need one
// dtype). Built when LibTorch is found (OGPSA_ENABLE_TORCH).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <utility>
#include <vector>

#include "bench.hpp"

namespace ogpsa::bench {
namespace {

/// A tensor over memory ogpsa owns; LibTorch only reads what is passed as const.
template <class T>
at::Tensor wrap(const T* data, at::IntArrayRef sizes) {
  const auto dtype = std::is_same_v<T, bfloat16> ? at::kBFloat16 : at::kFloat;
  return at::from_blob(const_cast<T*>(data), sizes, at::TensorOptions().dtype(dtype));
}

/// g <- g - U (U^T g) for a basis held as k rows (the column-major d x k basis, transposed).
void torch_project(at::Tensor& g, const at::Tensor& rows) {
  const at::Tensor u = rows.scalar_type() == at::kFloat ? rows : rows.to(at::kFloat);
  const at::Tensor coefficients = u.mv(g);
  g.sub_(u.t().mv(coefficients));
}

/// LibTorch's view of every copy of a case (`rotation`), made before timing as a trainer holds its
/// parameters' tensors: `make(copy)` for each copy, in order.
template <class Data, class Make>
auto tensors_of_copies(rotation<Data>& data, Make make) {
  std::vector<decltype(make(data.copy(0)))> all;
  for (std::size_t r = 0; r < data.size(); ++r) all.push_back(make(data.copy(r)));
  return all;
}

template <class B>
void torch_flat(benchmark::State& state) {
  c10::InferenceMode guard;
  const index_t d = state.range(0), k = state.range(1);
  auto& data = shared_data<flat_case<B>>(flat_case<B>::key(d, k), d, k);
  auto copies = tensors_of_copies(data, [&](flat_case<B>& c) {
    return std::pair{wrap(c.gradient.data(), {d}), wrap(c.basis().data(), {k, d})};
  });
  std::size_t r = 0;
  for (auto _ : state) {
    torch_project(copies[r].first, copies[r].second);
    r = (r + 1) % copies.size();
    benchmark::ClobberMemory();
  }
  set_traffic(state, flat_traffic<float, B>(d, k), static_cast<double>(d));
}

void torch_matrix(benchmark::State& state) {
  c10::InferenceMode guard;
  const index_t m = state.range(0), n = state.range(1), k = state.range(2);
  auto& data = shared_data<matrix_case>(matrix_case::key(m, n, k), m, n, k);
  // Column-major G (m x n) and U (m x k) are row-major G^T and U^T: G^T - (G^T U) U^T.
  auto copies = tensors_of_copies(data, [&](matrix_case& c) {
    return std::pair{wrap(c.gradient.data(), {n, m}), wrap(c.basis().data(), {k, m})};
  });
  std::size_t r = 0;
  for (auto _ : state) {
    auto& [gt, ut] = copies[r];
    const at::Tensor coefficients = gt.mm(ut.t());
    gt.sub_(coefficients.mm(ut));
    r = (r + 1) % copies.size();
    benchmark::ClobberMemory();
  }
  set_traffic(state, matrix_traffic<float, float>(m, n, k), static_cast<double>(m * n));
}

template <class B>
void torch_model(benchmark::State& state) {
  c10::InferenceMode guard;
  const index_t k = state.range(0);
  auto& data = shared_data<model_case<B>>(model_case<B>::key(k), k);
  auto copies = tensors_of_copies(data, [&](model_case<B>& c) {
    std::vector<std::pair<at::Tensor, at::Tensor>> tensors;
    for (std::size_t i = 0; i < c.tensors.size(); ++i)
      tensors.emplace_back(wrap(c.gradient.data() + c.offsets[i], {c.tensors[i].size()}),
                           wrap(c.basis(i).data(), {k, c.tensors[i].size()}));
    return tensors;
  });
  std::size_t r = 0;
  for (auto _ : state) {
    for (auto& [g, u] : copies[r]) torch_project(g, u);
    r = (r + 1) % copies.size();
    benchmark::ClobberMemory();
  }
  const index_t total = total_size(decoder_tensors());
  set_traffic(state, flat_traffic<float, B>(total, k), static_cast<double>(total));
}

template <class B>
bool add_peers(const std::string& variant) {
  return add({"flat", "torch", variant, torch_flat<B>, flat_args(), flat_arg_names}) &&
         add({"model", "torch", variant, torch_model<B>, {{model_rank}}, model_arg_names});
}

const bool threads_registered = [] {
  thread_setters().push_back([](int threads) { at::set_num_threads(threads); });
  return true;
}();

const bool registered = add_peers<float>("f32") && add_peers<bfloat16>("bf16") &&
                        add({"matrix", "torch", "f32", torch_matrix, matrix_args(), matrix_arg_names});

}  // namespace
}  // namespace ogpsa::bench
