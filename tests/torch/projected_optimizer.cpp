// Tests of <ogpsa/torch/projected_optimizer.hpp>, and of the reference_pass and family choices it
// hands to user code.
#include "doctest_after_glog.hpp"  // first: see there

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/nn/functional/loss.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <ogpsa/torch.hpp>

#include "reference/published.hpp"
#include "support.hpp"

namespace t = ogpsa::test;
namespace ot = ogpsa::torch;
using ogpsa::family;

namespace {

struct net_impl : torch::nn::Module {
  net_impl()
      : fc1(register_module("fc1", torch::nn::Linear(8, 6))),
        fc2(register_module("fc2", torch::nn::Linear(6, 3))) {}
  torch::Tensor forward(const torch::Tensor& x) { return fc2(torch::tanh(fc1(x))); }
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE_IMPL(net, net_impl);

/// A model whose initial weights depend only on `seed`.
net make_net(std::uint64_t seed) {
  torch::manual_seed(seed);
  return net();
}

/// The mean squared error on batch `batch` of a data set `set` (safety 0, reference 1, 2, ...).
torch::Tensor loss(net& model, int set, int batch) {
  torch::manual_seed(static_cast<std::uint64_t>(1000 * set + batch));
  const torch::Tensor x = torch::randn({5, 8}), y = torch::randn({5, 3});
  return torch::nn::functional::mse_loss(model->forward(x), y);
}

/// A reference closure feeding `batches` batches of reference set 1.
ot::projected_optimizer<>::reference_fn reference(net& model, int batches = 3) {
  return [&model, batches](ot::reference_pass& pass) {
    for (int b = 0; b < batches; ++b) pass.feed(loss(model, 1, b));
  };
}

using svd_projector =
    ogpsa::projector<ogpsa::exact_svd, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<float>>;

svd_projector rank_two(std::size_t refresh_every = 30) {
  return svd_projector(ogpsa::exact_svd{.rank = 2}, {}, ogpsa::every_n_steps{refresh_every});
}

using row_major = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Tensor x in double, matricized as the wrapper registers it (one row per index of dimension 0).
torch::Tensor matricized_double(const torch::Tensor& x) {
  return x.detach().to(torch::kDouble).contiguous().reshape({x.dim() == 0 ? 1 : x.size(0), -1});
}

/// |U^T x| / |x| over the block's target-space vectors (family), from the saved basis: the cosine
/// between tensor x and the block's subspace, computed in double independently of the library.
double subspace_cosine(const ogpsa::block_state<float>& b, const torch::Tensor& x) {
  const torch::Tensor m = matricized_double(x);
  const Eigen::Map<const row_major> g(m.data_ptr<double>(), m.size(0), m.size(1));
  const Eigen::MatrixXd u = b.basis.cast<double>();
  Eigen::MatrixXd c;
  if (b.kind == family::flat)
    c = u.transpose() * Eigen::Map<const Eigen::VectorXd>(m.data_ptr<double>(), m.numel());
  if (b.kind == family::left) c = u.transpose() * g;
  if (b.kind == family::right) c = g * u;
  return c.norm() / g.norm();
}

/// x minus its component in the block's subspace (x - U U^T x on the family's vectors), in double
/// from the saved basis, independently of the library; shaped like x.
torch::Tensor without_subspace(const ogpsa::block_state<float>& b, const torch::Tensor& x) {
  const torch::Tensor m = matricized_double(x);
  const Eigen::Map<const row_major> g(m.data_ptr<double>(), m.size(0), m.size(1));
  const Eigen::MatrixXd u = b.basis.cast<double>();
  row_major out;
  if (b.kind == family::flat) {
    const Eigen::Map<const Eigen::RowVectorXd> v(m.data_ptr<double>(), m.numel());
    out = (v - (u * (u.transpose() * v.transpose())).transpose())
              .reshaped<Eigen::RowMajor>(m.size(0), m.size(1));
  }
  if (b.kind == family::left) out = g - u * (u.transpose() * g);
  if (b.kind == family::right) out = g - (g * u) * u.transpose();
  return torch::from_blob(out.data(), {m.size(0), m.size(1)}, torch::kDouble).clone().reshape(x.sizes());
}

std::vector<torch::Tensor> clones(const std::vector<torch::Tensor>& ts, bool gradients) {
  std::vector<torch::Tensor> out;
  for (const auto& p : ts)
    out.push_back(!gradients ? p.detach().clone() : p.grad().defined() ? p.grad().clone() : torch::Tensor());
  return out;
}

/// |<a, b>| / (|a| |b|), in double.
double abs_cosine(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a * b).sum().abs() / (a.norm() * b.norm())).item<double>();
}

void safety_backward(net& model, int step) {
  loss(model, 0, step).backward();
}

struct counter {
  int refreshes = 0, projections = 0;
  void on_refresh(const ogpsa::refresh_info&) { ++refreshes; }
  void on_projection(const ogpsa::projection_info&) { ++projections; }
};

/// Throws from its `n`-th projection report.
struct abort_on_report {
  int n;
  int seen = 0;
  void on_projection(const ogpsa::projection_info&) {
    if (++seen == n) throw std::runtime_error("aborted by a callback");
  }
};

/// Copies the registered tensors (the parameters, or their gradients) at the first projection
/// report of a call: by then a batched call has projected every block, a block-by-block loop one.
struct first_report {
  const std::vector<torch::Tensor>* tensors;
  bool gradients;
  std::vector<torch::Tensor> seen;
  void on_projection(const ogpsa::projection_info&) {
    if (seen.empty()) seen = clones(*tensors, gradients);
  }
};

/// Adam that misbehaves once it has moved the parameters, as a buggy optimizer or hook might:
/// throws, or leaves its first parameter with other strides (same values).
struct faulty_adam : torch::optim::Adam {
  enum class fault { none, throws, relayouts };
  using Adam::Adam;
  fault after_step = fault::none;
  torch::Tensor step(LossClosure closure = nullptr) override {
    torch::Tensor loss = Adam::step(std::move(closure));
    if (after_step == fault::throws) throw std::runtime_error("the inner step failed");
    if (after_step == fault::relayouts) {
      torch::NoGradGuard no_grad;
      at::Tensor& p = param_groups().front().params().front();
      const auto order = p.dim() == 3 ? std::vector<std::int64_t>{2, 1, 0} : std::vector<std::int64_t>{1, 0};
      p.set_(p.permute(order).contiguous().permute(order));
    }
    return loss;
  }
};

}  // namespace

TEST_CASE("after project() every registered gradient is orthogonal to its capability subspace") {
  net model = make_net(1);
  torch::optim::Adam adam(model->parameters());
  ot::projected_optimizer opt(adam, model->named_parameters(), reference(model), rank_two());
  CHECK(opt.names() == std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
  safety_backward(model, 0);
  const auto before = clones(opt.parameters(), true);
  counter seen;
  opt.project(seen);
  CHECK(seen.refreshes == 1);
  CHECK(seen.projections == 4);
  const auto state = opt.state();
  for (std::size_t i = 0; i < before.size(); ++i) {
    INFO("block " << opt.names()[i]);
    CHECK(state.blocks[i].basis.cols() == 2);
    CHECK(subspace_cosine(state.blocks[i], before[i]) > 1e-2);  // there was something to remove
    CHECK(subspace_cosine(state.blocks[i], opt.parameters()[i].grad()) < 1e-5);
  }
}

TEST_CASE("the published projector removes each reference set's mean gradient, independently computed") {
  net model = make_net(2);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
  auto two_sets = [&](ot::reference_pass& pass) {
    for (int b = 0; b < 3; ++b) pass.feed(loss(model, 1, b), 0);
    for (int b = 0; b < 2; ++b) pass.feed(loss(model, 2, b), 1);
  };
  ot::projected_optimizer opt(sgd, model->named_parameters(), two_sets);
  safety_backward(model, 0);
  opt.project();
  for (int set = 1; set <= 2; ++set) {
    torch::Tensor total = loss(model, set, 0);
    for (int b = 1; b < (set == 1 ? 3 : 2); ++b) total = total + loss(model, set, b);
    const auto directions = torch::autograd::grad({total}, opt.parameters());
    for (std::size_t i = 0; i < directions.size(); ++i) {
      const torch::Tensor g = opt.parameters()[i].grad();
      INFO("set " << set << ", block " << opt.names()[i]);
      CHECK(opt.projector().family_of(ogpsa::block_id{i}) == family::flat);
      CHECK(abs_cosine(g, directions[i]) < 1e-5);
    }
  }
}

TEST_CASE("with an empty subspace the wrapper steps exactly like the plain optimizer") {
  for (const ot::placement where :
       {ot::placement::gradient, ot::placement::update, ot::placement::gradient_and_update}) {
    CAPTURE(static_cast<int>(where));
    net plain = make_net(3), wrapped = make_net(3);
    torch::optim::AdamW plain_opt(plain->parameters(), torch::optim::AdamWOptions(1e-2).weight_decay(0.1));
    torch::optim::AdamW inner(wrapped->parameters(), torch::optim::AdamWOptions(1e-2).weight_decay(0.1));
    // The reference gradients are all zero: every block's subspace comes out empty.
    auto zero = [&](ot::reference_pass& pass) { pass.feed((wrapped->fc1->weight * 0).sum()); };
    ot::projected_optimizer opt(inner, wrapped->named_parameters(), zero, ogpsa::published_projector{},
                                {.where = where});
    for (int step = 0; step < 4; ++step) {
      plain_opt.zero_grad();
      safety_backward(plain, step);
      plain_opt.step();
      inner.zero_grad();
      safety_backward(wrapped, step);
      opt.step();
    }
    for (std::size_t i = 0; i < opt.parameters().size(); ++i) {
      CHECK(opt.projector().subspace_of(ogpsa::block_id{i})->rank() == 0);
      CHECK(torch::equal(plain->parameters()[i], wrapped->parameters()[i]));
    }
    CHECK(opt.projector().steps() == 4);
  }
}

TEST_CASE("step() alone projects exactly as project(), step() does") {
  net a = make_net(4), b = make_net(4);
  torch::optim::Adam inner_a(a->parameters()), inner_b(b->parameters());
  ot::projected_optimizer opt_a(inner_a, a->named_parameters(), reference(a), rank_two(2));
  ot::projected_optimizer opt_b(inner_b, b->named_parameters(), reference(b), rank_two(2));
  for (int step = 0; step < 5; ++step) {
    inner_a.zero_grad();
    safety_backward(a, step);
    opt_a.project();
    opt_a.step();
    inner_b.zero_grad();
    safety_backward(b, step);
    opt_b.step();
  }
  for (std::size_t i = 0; i < a->parameters().size(); ++i)
    CHECK(torch::equal(a->parameters()[i], b->parameters()[i]));
  CHECK(opt_a.projector().refreshes() == 3);  // before steps 0, 2 and 4
  CHECK(opt_b.projector().steps() == 5);
}

TEST_CASE("reference passes never leave gradients in the optimizer's buffers") {
  net model = make_net(5);
  torch::optim::Adam adam(model->parameters());
  SUBCASE("gradients that do not exist yet stay undefined") {
    ot::projected_optimizer opt(adam, model->named_parameters(), reference(model));
    opt.refresh();
    CHECK(opt.projector().refreshes() == 1);
    for (const auto& p : model->parameters()) CHECK_FALSE(p.grad().defined());
  }
  SUBCASE("existing gradients keep their buffers, versions and values") {
    ot::projected_optimizer opt(adam, model->named_parameters(), reference(model));
    safety_backward(model, 0);
    const auto values = clones(model->parameters(), true);
    std::vector<const void*> buffers;
    std::vector<std::int64_t> versions;
    for (const auto& p : model->parameters()) {
      buffers.push_back(p.grad().unsafeGetTensorImpl());
      versions.push_back(p.grad()._version());
    }
    opt.refresh();
    for (std::size_t i = 0; i < values.size(); ++i) {
      const torch::Tensor& g = model->parameters()[i].grad();
      CHECK(g.unsafeGetTensorImpl() == buffers[i]);
      CHECK(g._version() == versions[i]);
      CHECK(torch::equal(g, values[i]));
    }
  }
  SUBCASE("a closure that calls backward() is caught and its pass discarded") {
    bool leak = false;
    auto leaky = [&](ot::reference_pass& pass) {
      torch::Tensor l = loss(model, 1, 0);
      if (leak) l.backward({}, /*retain_graph=*/true);
      pass.feed(l);
      pass.feed(loss(model, 1, 1));
    };
    ot::projected_optimizer opt(adam, model->named_parameters(), leaky, rank_two());
    opt.refresh();
    const auto kept = opt.state();
    leak = true;
    t::check_throws_with<ogpsa::state_error>(
        [&] { opt.refresh(); }, {"changed the gradient of parameter 'fc1.weight'", "backward()"});
    CHECK_FALSE(opt.projector().reference_pass_active());
    CHECK(opt.projector().refreshes() == 1);
    CHECK(opt.state().blocks[0].basis == kept.blocks[0].basis);
  }
}

TEST_CASE("update-space projection makes the step Adam actually takes orthogonal to the subspace") {
  auto worst_step_cosine = [](ot::placement where) {
    net model = make_net(6);
    torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(0.05));
    ot::projected_optimizer opt(adam, model->named_parameters(), reference(model), rank_two(1000),
                                {.where = where});
    double worst = 0;
    for (int step = 0; step < 4; ++step) {
      adam.zero_grad();
      safety_backward(model, step);
      const auto before = clones(opt.parameters(), false);
      opt.step();
      const auto state = opt.state();
      for (std::size_t i = 0; i < before.size(); ++i)
        worst = std::max(worst, subspace_cosine(state.blocks[i], opt.parameters()[i].detach() - before[i]));
    }
    return worst;
  };
  CHECK(worst_step_cosine(ot::placement::gradient) > 0.05);  // what Adam does to projected gradients
  CHECK(worst_step_cosine(ot::placement::update) < 1e-4);
  CHECK(worst_step_cosine(ot::placement::gradient_and_update) < 1e-4);
}

TEST_CASE("the projector state survives save() and load() next to a LibTorch checkpoint, bit for bit") {
  net a = make_net(7), b = make_net(7);
  torch::optim::Adam inner_a(a->parameters()), inner_b(b->parameters());
  ot::projected_optimizer opt_a(inner_a, a->named_parameters(), reference(a), rank_two());
  for (int step = 0; step < 3; ++step) {
    inner_a.zero_grad();
    safety_backward(a, step);
    opt_a.step();
  }
  torch::serialize::OutputArchive out;
  a->save(out);  // the model's own checkpoint, in the same archive
  opt_a.save(out);
  std::stringstream bytes;
  out.save_to(bytes);

  torch::serialize::InputArchive in;
  in.load_from(bytes);
  b->load(in);
  ot::projected_optimizer opt_b(inner_b, b->named_parameters(), reference(b), rank_two());
  opt_b.load(in);
  const auto sa = opt_a.state(), sb = opt_b.state();
  CHECK(sb.steps == 3);
  CHECK(sb.steps_since_refresh == sa.steps_since_refresh);
  CHECK(sb.refreshes == sa.refreshes);
  for (std::size_t i = 0; i < sa.blocks.size(); ++i) {
    CHECK(sb.blocks[i].basis == sa.blocks[i].basis);
    CHECK(sb.blocks[i].strengths == sa.blocks[i].strengths);
  }
  // Both now project the same gradient identically, without a refresh.
  inner_a.zero_grad();
  inner_b.zero_grad();
  safety_backward(a, 9);
  safety_backward(b, 9);
  opt_a.project();
  opt_b.project();
  CHECK(opt_b.projector().refreshes() == 1);
  for (std::size_t i = 0; i < sa.blocks.size(); ++i)
    CHECK(torch::equal(a->parameters()[i].grad(), b->parameters()[i].grad()));

  torch::serialize::InputArchive unrelated;
  t::check_throws_with<ogpsa::invalid_argument>(
      [&] { opt_b.load(unrelated); }, {"ogpsa::torch::projected_optimizer::load()", "no 'ogpsa' entry"});
  ot::projected_optimizer flat(inner_b, b->named_parameters(), reference(b), rank_two(),
                               {.families = ot::flat_blocks});
  torch::serialize::InputArchive again;
  std::stringstream copy(bytes.str());
  again.load_from(copy);
  t::check_throws_with<ogpsa::shape_error>([&] { flat.load(again); }, {"'fc1.weight' (right", "(flat"});
}

TEST_CASE("families: matrix-side for weights where the policies allow it, or as the user chooses") {
  net model = make_net(8);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
  auto kinds = [](const auto& opt) {
    std::vector<family> k;
    for (std::size_t i = 0; i < opt.parameters().size(); ++i)
      k.push_back(opt.projector().family_of(ogpsa::block_id{i}));
    return k;
  };
  using fs = std::vector<family>;
  CHECK(kinds(ot::projected_optimizer(sgd, model->named_parameters(), reference(model), rank_two())) ==
        fs{family::right, family::flat, family::right, family::flat});
  CHECK(kinds(ot::projected_optimizer(sgd, model->named_parameters(), reference(model))) ==
        fs(4, family::flat));
  CHECK(kinds(ot::projected_optimizer(sgd, model->named_parameters(), reference(model), rank_two(),
                                      {.families = ot::flat_blocks})) == fs(4, family::flat));
  const ogpsa::projector<ogpsa::exact_svd, ogpsa::conflict_only> threshold(
      {}, ogpsa::conflict_only{.behaviour = ogpsa::conflict_only::mode::threshold});
  CHECK(kinds(ot::projected_optimizer(sgd, model->named_parameters(), reference(model), threshold)) ==
        fs(4, family::flat));
  auto left_first = [](std::string_view name, const at::Tensor& p) {
    return name == "fc1.weight" ? family::left : ot::right_for_matrices(name, p);
  };
  CHECK(kinds(ot::projected_optimizer(sgd, model->named_parameters(), reference(model), rank_two(),
                                      {.families = left_first})) ==
        fs{family::left, family::flat, family::right, family::flat});
}

TEST_CASE("parameters without a gradient this step are skipped, frozen ones never registered") {
  net model = make_net(9);
  model->fc2->bias.requires_grad_(false);
  torch::optim::Adam adam(model->parameters());
  ot::projected_optimizer opt(adam, model->named_parameters(), reference(model), rank_two());
  CHECK(opt.names() == std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight"});
  torch::manual_seed(0);
  model->fc1->forward(torch::randn({5, 8})).square().sum().backward();  // fc2 gets no gradient
  opt.step();
  CHECK_FALSE(model->fc2->weight.grad().defined());
  const auto state = opt.state();
  CHECK(state.steps == 1);
  CHECK(subspace_cosine(state.blocks[0], model->fc1->weight.grad()) < 1e-5);
}

TEST_CASE("misuse of the wrapper is a clear error") {
  net model = make_net(11);
  torch::optim::Adam adam(model->parameters());
  const auto named = model->named_parameters();
  SUBCASE("registration") {
    t::check_throws_with<ogpsa::invalid_argument>(
        [&] { (void)ot::projected_optimizer(adam, named, nullptr); },
        {"ogpsa::torch::projected_optimizer()", "no reference closure"});
    torch::optim::Adam first_layer(model->fc1->parameters());
    t::check_throws_with<ogpsa::invalid_argument>(
        [&] { (void)ot::projected_optimizer(first_layer, named, reference(model)); },
        {"parameter 'fc2.weight'", "not in any of the optimizer's parameter groups"});
    torch::OrderedDict<std::string, torch::Tensor> tied;
    tied.insert("embedding", model->fc1->weight);
    tied.insert("lm_head", model->fc1->weight);
    t::check_throws_with<ogpsa::invalid_argument>(
        [&] { (void)ot::projected_optimizer(adam, tied, reference(model)); },
        {"'lm_head' is the same tensor as 'embedding'", "tied"});
    auto all_right = [](std::string_view, const at::Tensor&) { return family::right; };
    t::check_throws_with<ogpsa::shape_error>(
        [&] {
          (void)ot::projected_optimizer(adam, named, reference(model), rank_two(), {.families = all_right});
        },
        {"parameter 'fc1.bias' (sizes [6])", "right subspace"});
    t::check_throws_with<ogpsa::invalid_argument>(
        [&] {
          (void)ot::projected_optimizer(adam, named, reference(model), ogpsa::published_projector{},
                                        {.families = all_right});
        },
        {"mean_gradient does not support right blocks", "fc1.weight"});
    net doubles = make_net(11);
    doubles->to(torch::kDouble);
    torch::optim::Adam adam_d(doubles->parameters());
    t::check_throws_with<ogpsa::invalid_argument>(
        [&] { (void)ot::projected_optimizer(adam_d, doubles->named_parameters(), reference(model)); },
        {"parameter 'fc1.weight' has dtype Double", "gradients are float"});
    for (auto& p : model->parameters()) p.requires_grad_(false);
    t::check_throws_with<ogpsa::invalid_argument>(
        [&] { (void)ot::projected_optimizer(adam, named, reference(model)); },
        {"none of the 4 parameters requires grad"});
  }
  SUBCASE("steps") {
    ot::projected_optimizer opt(adam, named, reference(model));
    safety_backward(model, 0);
    opt.project();
    t::check_throws_with<ogpsa::state_error>([&] { opt.project(); },
                                             {"already projected", "call step() first"});
    opt.step();
    CHECK_NOTHROW(opt.project());
  }
  SUBCASE("reference passes") {
    std::function<void(ot::reference_pass&)> feed;
    ot::projected_optimizer opt(adam, named, [&](ot::reference_pass& pass) { feed(pass); });
    auto check_refresh = [&]<class E>(std::function<void(ot::reference_pass&)> f,
                                      std::initializer_list<std::string> what) {
      feed = std::move(f);
      t::check_throws_with<E>([&] { opt.refresh(); }, what);
      CHECK_FALSE(opt.projector().reference_pass_active());
    };
    torch::manual_seed(0);
    const torch::Tensor x = torch::randn({5, 8});
    check_refresh.operator()<ogpsa::shape_error>(
        [&](ot::reference_pass& p) { p.feed(model->forward(x)); },
        {"ogpsa::torch::reference_pass::feed()", "one element", "[5, 3]"});
    check_refresh.operator()<ogpsa::invalid_argument>(
        [&](ot::reference_pass& p) {
          torch::NoGradGuard no_grad;
          p.feed(model->forward(x).sum());
        },
        {"does not require grad"});
    check_refresh.operator()<ogpsa::shape_error>(
        [&](ot::reference_pass& p) {
          p.feed_gradients({torch::zeros({6, 8})});
        },
        {"got 1 gradients for 4 registered parameters"});
    check_refresh.operator()<ogpsa::shape_error>(
        [&](ot::reference_pass& p) {
          p.feed_gradients(
              {torch::zeros({6, 8}), torch::zeros({6}), torch::zeros({3, 6}), torch::zeros({4})});
        },
        {"parameter 'fc2.bias' has sizes [4], the parameter [3]"});
    check_refresh.operator()<ogpsa::invalid_argument>(
        [&](ot::reference_pass& p) {
          p.feed_gradients({torch::zeros({6, 8}, torch::kDouble), {}, {}, {}});
        },
        {"the gradient for parameter 'fc1.weight': Double on cpu, but the parameter is Float on cpu"});
    check_refresh.operator()<ogpsa::state_error>([](ot::reference_pass&) {}, {"empty reference pass"});
  }
}

TEST_CASE("reference gradients laid out unlike the parameter are fed in the parameter's layout") {
  net model = make_net(12);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
  torch::Tensor direction = torch::randn({8, 6}).t();  // fc1.weight's sizes (6, 8), transposed strides
  auto transposed = [&](ot::reference_pass& pass) { pass.feed_gradients({direction, {}, {}, {}}); };
  ot::projected_optimizer opt(sgd, model->named_parameters(), transposed);
  model->fc1->weight.mutable_grad() = direction.contiguous() + 0.5 * torch::randn({6, 8});
  for (auto* p : {&model->fc1->bias, &model->fc2->weight, &model->fc2->bias})
    p->mutable_grad() = torch::zeros_like(*p);
  opt.project();
  const torch::Tensor g = model->fc1->weight.grad();
  CHECK(abs_cosine(g, direction) < 1e-6);
}

TEST_CASE("layer inputs fed with feed_vectors give GPM-style input-space bases") {
  net model = make_net(13);
  torch::optim::Adam adam(model->parameters());
  torch::OrderedDict<std::string, torch::Tensor> first_weight;
  first_weight.insert("fc1.weight", model->fc1->weight);
  torch::manual_seed(13);
  const torch::Tensor inputs =
      torch::randn({20, 2}).matmul(torch::randn({2, 8}));  // 20 inputs in a 2-D space
  std::function<void(ot::reference_pass&)> feed = [&](ot::reference_pass& pass) {
    pass.feed_vectors(model->fc1->weight, inputs);
  };
  ot::projected_optimizer opt(
      adam, first_weight, [&](ot::reference_pass& pass) { feed(pass); }, rank_two());
  safety_backward(model, 0);
  const torch::Tensor& g = model->fc1->weight.grad();
  auto alignment = [&] { return (g.matmul(inputs.t()).norm() / (g.norm() * inputs.norm())).item<double>(); };
  CHECK(alignment() > 1e-2);
  opt.project();
  CHECK(alignment() < 1e-6);  // every row of the gradient is orthogonal to every input

  auto check_refresh = [&]<class E>(std::function<void(ot::reference_pass&)> f,
                                    std::initializer_list<std::string> what) {
    feed = std::move(f);
    t::check_throws_with<E>([&] { opt.refresh(); }, what);
  };
  check_refresh.operator()<ogpsa::invalid_argument>(
      [&](ot::reference_pass& pass) { pass.feed_vectors(model->fc2->weight, inputs); },
      {"ogpsa::torch::reference_pass::feed_vectors()", "sizes [3, 6]",
       "not one of the 1 registered parameters"});
  check_refresh.operator()<ogpsa::shape_error>(
      [&](ot::reference_pass& pass) { pass.feed_vectors(model->fc1->weight, inputs[0]); },
      {"the vectors for parameter 'fc1.weight' must be a matrix", "[8]"});
  check_refresh.operator()<ogpsa::shape_error>(
      [&](ot::reference_pass& pass) { pass.feed_vectors(model->fc1->weight, inputs.slice(1, 0, 7)); },
      {"ogpsa::projector::feed_columns()", "target dimension 8", "length 7"});
  check_refresh.operator()<ogpsa::invalid_argument>(
      [&](ot::reference_pass& pass) { pass.feed_vectors(model->fc1->weight, inputs.to(torch::kDouble)); },
      {"the vectors for parameter 'fc1.weight': Double on cpu, but the parameter is Float on cpu"});
  CHECK(opt.projector().refreshes() == 1);
}

TEST_CASE("update placement steps every parameter to old + P(new - old), independently computed") {
  net wrapped = make_net(14), twin = make_net(14);
  torch::optim::Adam inner(wrapped->parameters(), torch::optim::AdamOptions(0.05));
  torch::optim::Adam plain(twin->parameters(), torch::optim::AdamOptions(0.05));
  ot::projected_optimizer opt(inner, wrapped->named_parameters(), reference(wrapped), rank_two(1000),
                              {.where = ot::placement::update});
  for (int step = 0; step < 3; ++step) {
    // The twin starts each step at the wrapped model's weights and sees the same gradients, so
    // its Adam takes the inner optimizer's unprojected step: new.
    {
      torch::NoGradGuard no_grad;
      for (std::size_t i = 0; i < opt.parameters().size(); ++i)
        twin->parameters()[i].copy_(opt.parameters()[i]);
    }
    inner.zero_grad();
    plain.zero_grad();
    safety_backward(wrapped, step);
    safety_backward(twin, step);
    opt.project();  // the refresh when due; under placement::update the gradients stay as they are
    const auto state = opt.state();
    const auto old = clones(opt.parameters(), false);
    opt.step();
    plain.step();
    for (std::size_t i = 0; i < old.size(); ++i) {
      INFO("step " << step << ", block " << opt.names()[i]);
      const torch::Tensor moved =
          twin->parameters()[i].detach().to(torch::kDouble) - old[i].to(torch::kDouble);
      const torch::Tensor expected = old[i].to(torch::kDouble) + without_subspace(state.blocks[i], moved);
      const torch::Tensor got = opt.parameters()[i].detach().to(torch::kDouble);
      CHECK((got - expected).abs().max().item<double>() < 1e-6);
      CHECK((moved - (expected - old[i])).abs().max().item<double>() > 1e-3);  // something was removed
    }
  }
  CHECK(opt.projector().steps() == 3);
}

TEST_CASE("an exception after the inner step leaves every parameter with its old weights, bit for bit") {
  torch::manual_seed(15);
  const torch::Tensor w3 = torch::randn({2, 3, 4}, torch::requires_grad());  // a convolution-like weight
  const torch::Tensor w2 = torch::randn({4, 5}, torch::requires_grad());
  const torch::Tensor w1 = torch::randn({5}, torch::requires_grad());
  torch::OrderedDict<std::string, torch::Tensor> named;
  named.insert("w3", w3);
  named.insert("w2", w2);
  named.insert("w1", w1);
  auto objective = [&](int set, int batch) {
    torch::manual_seed(static_cast<std::uint64_t>(100 * set + batch));
    const torch::Tensor x = torch::randn({7, 2, 3});
    return ((x.reshape({7, 6}).matmul(w3.reshape({6, 4})).tanh().matmul(w2) + w1).square()).mean();
  };
  faulty_adam adam({w3, w2, w1}, torch::optim::AdamOptions(0.05));
  ot::projected_optimizer opt(adam, named,
                              [&](ot::reference_pass& pass) {
                                for (int b = 0; b < 2; ++b) pass.feed(objective(1, b));
                              },
                              ogpsa::published_projector{}, {.where = ot::placement::update});
  objective(0, 0).backward();
  opt.project();  // the first refresh
  for (std::size_t i = 0; i < 3; ++i) REQUIRE(opt.projector().subspace_of(ogpsa::block_id{i})->rank() == 1);
  const auto old = clones(opt.parameters(), false);
  auto check_old_weights = [&] {
    for (std::size_t i = 0; i < old.size(); ++i) {
      INFO("parameter " << opt.names()[i]);
      CHECK(torch::equal(opt.parameters()[i], old[i]));
    }
    CHECK(opt.projector().steps() == 0);
  };
  SUBCASE("a callback throws on the second block") {
    abort_on_report abort{2};
    CHECK_THROWS_WITH_AS(opt.step(abort), "aborted by a callback", std::runtime_error);
    check_old_weights();
    opt.step();  // the wrapper stays usable: the next step goes through
    CHECK_FALSE(torch::equal(opt.parameters()[1], old[1]));
    CHECK(opt.projector().steps() == 1);
  }
  SUBCASE("the inner step throws after moving the parameters") {
    adam.after_step = faulty_adam::fault::throws;
    CHECK_THROWS_WITH_AS(opt.step(), "the inner step failed", std::runtime_error);
    check_old_weights();
  }
  SUBCASE("a parameter left non-contiguous by the inner step cannot be matricized (layout_error)") {
    adam.after_step = faulty_adam::fault::relayouts;
    CHECK_THROWS_AS(opt.step(), ogpsa::layout_error);
    CHECK_FALSE(w3.is_contiguous());
    check_old_weights();
  }
}

TEST_CASE("the parameters of one step are projected in one batched call") {
  net model = make_net(16);
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(0.05));
  SUBCASE("updates") {
    ot::projected_optimizer opt(adam, model->named_parameters(), reference(model), rank_two(),
                                {.where = ot::placement::update});
    safety_backward(model, 0);
    opt.project();
    const auto old = clones(opt.parameters(), false);
    first_report report{&opt.parameters(), false, {}};
    opt.step(report);
    REQUIRE(report.seen.size() == old.size());
    for (std::size_t i = 0; i < old.size(); ++i) {  // each buffer held its projected update
      INFO("block " << opt.names()[i]);
      CHECK(torch::allclose(report.seen[i], opt.parameters()[i].detach() - old[i], 0, 1e-6));
    }
  }
  SUBCASE("gradients, when some parameters have none") {
    ot::projected_optimizer opt(adam, model->named_parameters(), reference(model), rank_two());
    opt.refresh();
    torch::manual_seed(0);
    model->fc1->forward(torch::randn({5, 8})).square().sum().backward();  // fc2 gets no gradient
    first_report report{&opt.parameters(), true, {}};
    opt.project(report);
    for (std::size_t i = 0; i < 2; ++i) {
      INFO("block " << opt.names()[i]);
      CHECK(torch::equal(report.seen[i], opt.parameters()[i].grad()));
    }
    CHECK(opt.projector().steps() == 1);
  }
}

TEST_CASE("callbacks may be temporaries") {
  net model = make_net(17);
  torch::optim::Adam adam(model->parameters());
  ot::projected_optimizer opt(adam, model->named_parameters(), reference(model), rank_two());
  struct tally {
    counter* into;
    void on_refresh(const ogpsa::refresh_info& i) { into->on_refresh(i); }
    void on_projection(const ogpsa::projection_info& i) { into->on_projection(i); }
  };
  counter seen;
  opt.refresh(tally{&seen});
  safety_backward(model, 0);
  opt.project(tally{&seen});
  opt.step(tally{&seen});  // already projected: nothing more to report
  adam.zero_grad();
  safety_backward(model, 1);
  opt.step(tally{&seen});
  CHECK(seen.refreshes == 1);
  CHECK(seen.projections == 8);
}

namespace {

using threshold_projector =
    ogpsa::projector<ogpsa::mean_gradient, ogpsa::conflict_only, ogpsa::every_n_steps, ogpsa::storage<float>>;

threshold_projector threshold_mode(double base_scale) {
  return threshold_projector({},
                             {.behaviour = ogpsa::conflict_only::mode::threshold, .base_scale = base_scale});
}

published::vec to_vec(const torch::Tensor& t) {
  const torch::Tensor d = t.detach().to(torch::kDouble).contiguous();
  return published::vec(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

/// The two micro-batches of one step: the first agrees with the reference set's mean gradient
/// (it is the reference loss), the second conflicts with it.
torch::Tensor micro_batch(net& model, int b) {
  const torch::Tensor reference_loss = loss(model, 1, 0) + loss(model, 1, 1);
  return b == 0 ? reference_loss : loss(model, 0, 0) - 3 * reference_loss;
}

}  // namespace

TEST_CASE("micro-batch placement reproduces the published per-micro-batch threshold decisions") {
  const double base_scale = 0.3;
  // Independently, on a twin at the same weights: the published direction of every tensor and
  // the published threshold rule applied to each micro-batch's gradient, or once to their sum.
  net twin = make_net(18);
  std::vector<std::vector<published::vec>> references(4), micro(4);
  for (int b = 0; b < 2; ++b) {
    const auto r = torch::autograd::grad({loss(twin, 1, b)}, twin->parameters());
    const auto g = torch::autograd::grad({micro_batch(twin, b)}, twin->parameters());
    for (std::size_t i = 0; i < 4; ++i) {
      references[i].push_back(to_vec(r[i]));
      micro[i].push_back(to_vec(g[i]));
    }
  }
  std::vector<published::vec> per_micro_batch(4), decided_once(4);
  for (std::size_t i = 0; i < 4; ++i) {
    const std::vector<published::vec> b{*published::direction(references[i])};
    published::vec sum(micro[i][0].size(), 0.0);
    per_micro_batch[i] = sum;
    for (const auto& g : micro[i]) {
      const published::vec p = published::threshold(g, b, base_scale);
      for (std::size_t j = 0; j < g.size(); ++j) per_micro_batch[i][j] += p[j], sum[j] += g[j];
    }
    decided_once[i] = published::threshold(sum, b, base_scale);
  }
  auto max_difference = [](const published::vec& a, const published::vec& b) {
    double m = 0;
    for (std::size_t j = 0; j < a.size(); ++j) m = std::max(m, std::abs(a[j] - b[j]));
    return m;
  };

  for (const ot::placement where : {ot::placement::micro_batches, ot::placement::gradient}) {
    CAPTURE(static_cast<int>(where));
    net model = make_net(18);
    torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
    ot::projected_optimizer opt(sgd, model->named_parameters(), reference(model, 2),
                                threshold_mode(base_scale), {.where = where});
    opt.refresh();
    for (int b = 0; b < 2; ++b) micro_batch(model, b).backward();
    opt.project();
    const auto& expected = where == ot::placement::micro_batches ? per_micro_batch : decided_once;
    for (std::size_t i = 0; i < 4; ++i) {
      INFO("block " << opt.names()[i]);
      const published::vec got = to_vec(opt.parameters()[i].grad());
      const double scale = max_difference(expected[i], published::vec(got.size(), 0.0));
      CHECK(max_difference(got, expected[i]) < 1e-5 * scale);
      CHECK(max_difference(per_micro_batch[i], decided_once[i]) > 0.1 * scale);  // the decision matters here
    }
  }
}

TEST_CASE(
    "micro-batch placement: linear rules as after accumulation, refreshes after the step, hooks go with it") {
  net model = make_net(19), twin = make_net(19);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
  torch::optim::SGD twin_sgd(twin->parameters(), torch::optim::SGDOptions(0.1));
  {
    ot::projected_optimizer opt(sgd, model->named_parameters(), reference(model), rank_two(2),
                                {.where = ot::placement::micro_batches});
    t::check_throws_with<ogpsa::state_error>(
        [&] { safety_backward(model, 0); },
        {"'fc2.bias' received a gradient before any subspace", "refresh()"});
    sgd.zero_grad();
    opt.refresh();
    ot::projected_optimizer after(twin_sgd, twin->named_parameters(), reference(twin), rank_two(2));
    for (int step = 0; step < 4; ++step) {
      sgd.zero_grad();
      for (int b = 0; b < 2; ++b) safety_backward(model, 10 * step + b);
      const auto state = opt.state();
      for (std::size_t i = 0; i < 4; ++i)
        CHECK(subspace_cosine(state.blocks[i], opt.parameters()[i].grad()) < 1e-5);
      if (step == 0) {  // a linear rule: the same as projecting the accumulated gradient once
        for (int b = 0; b < 2; ++b) safety_backward(twin, b);
        after.project();
        for (std::size_t i = 0; i < 4; ++i) {
          CHECK(after.state().blocks[i].basis == state.blocks[i].basis);
          CHECK(torch::allclose(opt.parameters()[i].grad(), after.parameters()[i].grad(), 1e-5, 1e-7));
        }
      }
      opt.project();  // nothing left to do
      opt.step();
    }
    CHECK(opt.projector().steps() == 4);
    CHECK(opt.projector().refreshes() == 3);  // refresh(), then after steps 2 and 4
    CHECK_FALSE(opt.refresh_due());
  }
  // Without the wrapper, backward() accumulates raw gradients again.
  sgd.zero_grad();
  safety_backward(model, 99);
  const auto raw = torch::autograd::grad({loss(model, 0, 99)}, model->parameters());
  for (std::size_t i = 0; i < 4; ++i) CHECK(torch::equal(model->parameters()[i].grad(), raw[i]));
}
