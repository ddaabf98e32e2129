// ogpsa's projections: one flat block, one matrix-side block, the whole model in one call, and
// one block of the model's total size (what the model call should cost).
#include "bench.hpp"

namespace ogpsa::bench {
namespace {

template <class Case>
void project_repeatedly(benchmark::State& state, rotation<Case>& data) {
  for (auto _ : state) {
    data.next().projector.project();
    benchmark::ClobberMemory();
  }
}

template <class B>
void flat(benchmark::State& state) {
  const index_t d = state.range(0), k = state.range(1);
  project_repeatedly(state, shared_data<flat_case<B>>(flat_case<B>::key(d, k), d, k));
  set_traffic(state, flat_traffic<float, B>(d, k), static_cast<double>(d));
}

void matrix(benchmark::State& state) {
  const index_t m = state.range(0), n = state.range(1), k = state.range(2);
  project_repeatedly(state, shared_data<matrix_case>(matrix_case::key(m, n, k), m, n, k));
  set_traffic(state, matrix_traffic<float, float>(m, n, k), static_cast<double>(m * n));
}

template <class B>
void model(benchmark::State& state) {
  const index_t k = state.range(0);
  project_repeatedly(state, shared_data<model_case<B>>(model_case<B>::key(k), k));
  const index_t total = total_size(decoder_tensors());
  set_traffic(state, flat_traffic<float, B>(total, k), static_cast<double>(total));
}

template <class B>
void model_as_one_block(benchmark::State& state) {
  const index_t k = state.range(0), total = total_size(decoder_tensors());
  project_repeatedly(state, shared_data<flat_case<B>>(flat_case<B>::key(total, k), total, k));
  set_traffic(state, flat_traffic<float, B>(total, k), static_cast<double>(total));
}

const bool registered =
    add({"flat", "ogpsa", "f32", flat<float>, flat_args(), flat_arg_names}) &&
    add({"flat", "ogpsa", "bf16", flat<bfloat16>, flat_args(), flat_arg_names}) &&
    add({"matrix", "ogpsa", "f32", matrix, matrix_args(), matrix_arg_names}) &&
    add({"model", "ogpsa", "f32", model<float>, {{model_rank}}, model_arg_names}) &&
    add({"model", "ogpsa_one_block", "f32", model_as_one_block<float>, {{model_rank}}, model_arg_names}) &&
    add({"model", "ogpsa", "bf16", model<bfloat16>, {{model_rank}}, model_arg_names}) &&
    add({"model", "ogpsa_one_block", "bf16", model_as_one_block<bfloat16>, {{model_rank}}, model_arg_names});

}  // namespace
}  // namespace ogpsa::bench
