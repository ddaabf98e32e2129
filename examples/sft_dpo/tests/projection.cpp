// The pipeline's OGPSA methods: after a step, every registered parameter's projected gradient
// (update, for update-space methods) is orthogonal to its reference directions, while the same
// step's raw gradient was not.
#include "doctest_after_glog.hpp"  // first: LibTorch's CHECK macros must not replace doctest's

#include <string>

#include "losses.hpp"
#include "training.hpp"

using namespace sft_dpo;

namespace {

options tiny() {
  options o;
  o.model = {32, 32, 1, 2, 64};
  o.reference_batches = 3;
  o.rank = 2;  // a flat basis has at most one direction per reference batch (the CLI checks it too)
  return o;
}

/// |coefficients of x on the basis| / |x|: U^T vec(x) (flat), U^T X (left) or X V (right).
double in_subspace(const stage_optimizer::subspace& s, const torch::Tensor& x) {
  const torch::Tensor basis = torch::from_blob(const_cast<float*>(s.basis.data()), {s.basis.cols(), s.basis.rows()});
  const torch::Tensor m = x.reshape({x.size(0), -1});  // basis rows are columns of the Eigen matrix
  torch::Tensor c;
  switch (s.kind) {
    case ogpsa::family::flat: c = basis.matmul(x.reshape({-1})); break;
    case ogpsa::family::left: c = basis.matmul(m); break;
    case ogpsa::family::right: c = m.matmul(basis.t()); break;
  }
  return c.norm().item<double>() / x.norm().item<double>();
}

torch::Tensor safety_loss(language_model& model, const dataset& data) {
  std::vector<exchange> items;
  for (std::size_t i = 0; i < 8; ++i) items.push_back(as_exchange(data.sft[i]));
  const batch b = make_batch(items, model->config.context);
  return answer_loss(model->forward(b.tokens), b);
}

}  // namespace

TEST_CASE("every OGPSA method leaves no component of a step in its reference directions") {
  const options o = tiny();
  const dataset data = default_data();
  for (const method& m : all_methods(o)) {
    if (m.kind != method_kind::ogpsa) continue;
    CAPTURE(m.name);
    auto model = prepare_model(m, {}, o, 5);  // as the pipeline does: GPM methods train linear weights only
    auto raw = make_model(o.model, snapshot(model), 5);  // the same weights, stepped by nobody
    stage_optimizer optimizer(m, stage_kind::sft, model, data, o, 1e-3);
    const weights before = snapshot(model);
    optimizer.zero_grad();
    safety_loss(model, data).backward();
    safety_loss(raw, data).backward();
    optimizer.step();

    const auto subspaces = optimizer.subspaces();
    REQUIRE_FALSE(subspaces.empty());
    const auto raw_parameters = raw->named_parameters();
    const auto parameters = model->named_parameters();
    double largest_raw = 0;
    for (const auto& s : subspaces) {
      CAPTURE(s.name);
      REQUIRE(s.basis.rows() == (s.kind == ogpsa::family::flat ? s.parameter.numel() : s.parameter.size(1)));
      if (s.basis.cols() == 0) continue;
      std::size_t index = 0;
      while (parameters.keys()[index] != s.name) ++index;
      const torch::Tensor step = m.projection.update_space ? (s.parameter - before[index]).detach() : s.parameter.grad();
      CHECK(in_subspace(s, step) < 1e-4);
      largest_raw = std::max(largest_raw, in_subspace(s, raw_parameters[s.name].grad()));
    }
    CHECK(largest_raw > 1e-2);  // projection had something to remove
  }
}
