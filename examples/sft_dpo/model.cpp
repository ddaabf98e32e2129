#include "model.hpp"

#include <cmath>
#include <map>
#include <stdexcept>

namespace sft_dpo {

std::vector<std::int64_t> tokenizer::encode(std::string_view text) {
  std::vector<std::int64_t> out;
  out.reserve(text.size());
  for (unsigned char c : text) out.push_back(c);
  return out;
}

std::string tokenizer::decode(const std::vector<std::int64_t>& tokens) {
  std::string out;
  for (std::int64_t t : tokens) {
    if (t < 0 || t > 255) break;
    out += static_cast<char>(t);
  }
  return out;
}

namespace {
constexpr double init_std = 0.02;  // GPT-2's initialization
}

linear_impl::linear_impl(std::int64_t in, std::int64_t out) {
  weight = register_parameter("weight", torch::randn({out, in}) * init_std);
  bias = register_parameter("bias", torch::zeros({out}));
}

torch::Tensor linear_impl::forward(const torch::Tensor& x) {
  if (recording) inputs.push_back(x.detach().reshape({-1, weight.size(1)}));
  torch::Tensor y = torch::nn::functional::linear(x, weight, bias);
  if (has_adapters()) y = y + torch::nn::functional::linear(torch::nn::functional::linear(x, lora_a_), lora_b_) * lora_scale_;
  return y;
}

void linear_impl::add_adapters(std::int64_t rank, double alpha) {
  if (has_adapters()) throw std::logic_error("sft_dpo::linear::add_adapters(): adapters are already on");
  weight.set_requires_grad(false);
  bias.set_requires_grad(false);
  const std::int64_t in = weight.size(1), out = weight.size(0);
  // A as PEFT initializes it (Kaiming-uniform with a = sqrt(5), i.e. bound 1/sqrt(in)); B zero.
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  lora_a_ = register_parameter("lora_a", torch::empty({rank, in}).uniform_(-bound, bound));
  lora_b_ = register_parameter("lora_b", torch::zeros({out, rank}));
  lora_scale_ = alpha / static_cast<double>(rank);
}

torch::Tensor linear_impl::merged_weight() const {
  if (!has_adapters()) return weight.detach().clone();
  return (weight + lora_b_.matmul(lora_a_) * lora_scale_).detach();
}

block_impl::block_impl(const model_config& c) : heads_(c.heads) {
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.width})));
  qkv = register_module("qkv", linear(c.width, 3 * c.width));
  out = register_module("out", linear(c.width, c.width));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.width})));
  up = register_module("up", linear(c.width, c.mlp));
  down = register_module("down", linear(c.mlp, c.width));
  // GPT-2: residual projections start smaller, by 1/sqrt(2 * layers).
  const double scale = 1.0 / std::sqrt(2.0 * static_cast<double>(c.layers));
  torch::NoGradGuard no_grad;
  out->weight.mul_(scale);
  down->weight.mul_(scale);
}

torch::Tensor block_impl::forward(const torch::Tensor& x, const torch::Tensor& causal_mask) {
  const auto b = x.size(0), t = x.size(1), w = x.size(2);
  // (3, batch, heads, time, head width)
  const auto qkv_heads = qkv(norm1(x)).view({b, t, 3, heads_, w / heads_}).permute({2, 0, 3, 1, 4});
  const auto q = qkv_heads[0], k = qkv_heads[1], v = qkv_heads[2];
  const auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(w / heads_));
  const auto attention = scores.masked_fill(causal_mask, -1e9).softmax(-1);
  const auto mixed = torch::matmul(attention, v).transpose(1, 2).reshape({b, t, w});
  const auto h = x + out(mixed);
  return h + down(torch::gelu(up(norm2(h))));
}

language_model_impl::language_model_impl(const model_config& c) : config(c) {
  if (c.width % c.heads != 0)
    throw std::invalid_argument("sft_dpo::language_model: width " + std::to_string(c.width) +
                                " is not a multiple of heads " + std::to_string(c.heads));
  tokens = register_module("tokens", torch::nn::Embedding(tokenizer::vocabulary, c.width));
  positions = register_module("positions", torch::nn::Embedding(c.context, c.width));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < c.layers; ++i) blocks->push_back(block(c));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.width})));
  head = register_module("head", linear(c.width, tokenizer::vocabulary));
  torch::NoGradGuard no_grad;
  tokens->weight.normal_(0, init_std);
  positions->weight.normal_(0, init_std);
}

torch::Tensor language_model_impl::forward(const torch::Tensor& ids) {
  const auto t = ids.size(1);
  if (t > config.context)
    throw std::invalid_argument("sft_dpo::language_model::forward(): " + std::to_string(t) +
                                " tokens exceed the context of " + std::to_string(config.context));
  auto h = tokens(ids) + positions(torch::arange(t, ids.options()));
  const auto causal = torch::ones({t, t}, torch::kBool).triu(1);
  for (const auto& b : *blocks) h = b->as<block_impl>()->forward(h, causal);
  return head(norm(h));
}

std::vector<linear> language_model_impl::linears() const {
  std::vector<linear> out;
  for (const auto& b : *blocks) {
    auto* blk = b->as<block_impl>();
    for (const linear& l : {blk->qkv, blk->out, blk->up, blk->down}) out.push_back(l);
  }
  out.push_back(head);
  return out;
}

void language_model_impl::set_recording(bool on) {
  for (auto& l : linears()) {
    l->recording = on;
    l->inputs.clear();
  }
}

void language_model_impl::add_adapters(std::int64_t rank, double alpha) {
  for (auto& p : parameters()) p.set_requires_grad(false);
  for (auto& l : linears()) l->add_adapters(rank, alpha);
}

namespace {
bool is_adapter(const std::string& name) { return name.find("lora_") != std::string::npos; }
}  // namespace

weights snapshot(const language_model& m) {
  std::map<const void*, linear> owners;  // weight tensor -> its linear, for adapters to fold in
  for (auto& l : m->linears()) owners.emplace(l->weight.unsafeGetTensorImpl(), l);
  weights w;
  for (const auto& p : m->named_parameters()) {
    if (is_adapter(p.key())) continue;
    const auto owner = owners.find(p.value().unsafeGetTensorImpl());
    w.push_back(owner != owners.end() ? owner->second->merged_weight() : p.value().detach().clone());
  }
  return w;
}

void load(language_model& m, const weights& w) {
  torch::NoGradGuard no_grad;
  std::size_t i = 0;
  for (auto& p : m->named_parameters()) {
    if (is_adapter(p.key())) continue;
    if (i >= w.size() || !w[i].sizes().equals(p.value().sizes()))
      throw std::invalid_argument("sft_dpo::load(): the weights do not fit the model at '" +
                                  p.key() + "'");
    p.value().copy_(w[i++]);
  }
  if (i != w.size())
    throw std::invalid_argument("sft_dpo::load(): " + std::to_string(w.size()) +
                                " tensors for a model with " + std::to_string(i));
}

language_model make_model(const model_config& c, const weights& w, std::uint64_t seed) {
  torch::manual_seed(seed);
  language_model m(c);
  if (!w.empty()) load(m, w);
  return m;
}

}  // namespace sft_dpo
