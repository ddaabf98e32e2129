#pragma once
// A small decoder-only transformer language model over bytes, with optional LoRA adapters and a
// switch that records every linear layer's inputs (for GPM-style input-space bases).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <torch/torch.h>

#include "options.hpp"

namespace sft_dpo {

/// Byte-level tokens: the 256 byte values plus three markers.
struct tokenizer {
  static constexpr std::int64_t bos = 256;   ///< starts every sequence
  static constexpr std::int64_t sep = 257;   ///< ends the prompt: the answer follows
  static constexpr std::int64_t eos = 258;   ///< ends the answer
  static constexpr std::int64_t pad = 259;   ///< fills batches after the end; never attended to
  static constexpr std::int64_t vocabulary = 260;

  static std::vector<std::int64_t> encode(std::string_view text);
  /// Bytes up to the first marker.
  static std::string decode(const std::vector<std::int64_t>& tokens);
};

/// y = x W^T + b, plus a LoRA term (x A^T B^T) * scale while adapters are on. Keeps its inputs
/// while recording is on.
class linear_impl : public torch::nn::Module {
 public:
  linear_impl(std::int64_t in, std::int64_t out);
  torch::Tensor forward(const torch::Tensor& x);

  /// Freezes weight and bias and adds trainable adapters A (rank x in, random) and B (out x rank,
  /// zero), so training starts from the same function (Hu et al., LoRA, arXiv 2106.09685).
  void add_adapters(std::int64_t rank, double alpha);
  bool has_adapters() const { return lora_a_.defined(); }
  /// The weight with the adapters folded in.
  torch::Tensor merged_weight() const;

  torch::Tensor weight, bias;
  bool recording = false;
  std::vector<torch::Tensor> inputs;  ///< recorded inputs, each (tokens x in)

 private:
  torch::Tensor lora_a_, lora_b_;
  double lora_scale_ = 0;
};
TORCH_MODULE_IMPL(linear, linear_impl);

class block_impl : public torch::nn::Module {
 public:
  block_impl(const model_config& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& causal_mask);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  linear qkv{nullptr}, out{nullptr}, up{nullptr}, down{nullptr};

 private:
  std::int64_t heads_;
};
TORCH_MODULE_IMPL(block, block_impl);

class language_model_impl : public torch::nn::Module {
 public:
  explicit language_model_impl(const model_config& c);
  /// tokens (batch x time, int64) -> logits (batch x time x vocabulary).
  torch::Tensor forward(const torch::Tensor& tokens);

  std::vector<linear> linears() const;
  /// Switches recording of the linear layers' inputs on or off, dropping what was recorded.
  void set_recording(bool on);
  void add_adapters(std::int64_t rank, double alpha);

  model_config config;
  torch::nn::Embedding tokens{nullptr}, positions{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  linear head{nullptr};
};
TORCH_MODULE_IMPL(language_model, language_model_impl);

/// Records every linear layer's inputs while it lives (see linear_impl::inputs).
class recording {
 public:
  explicit recording(language_model& m) : model_(m) { model_->set_recording(true); }
  ~recording() { model_->set_recording(false); }
  recording(const recording&) = delete;
  recording& operator=(const recording&) = delete;

 private:
  language_model& model_;
};

/// The parameters' values, in named_parameters() order, of the plain model (adapters folded in).
using weights = std::vector<torch::Tensor>;

weights snapshot(const language_model& m);
void load(language_model& m, const weights& w);
/// A new model with the given weights (or the initialization of `seed` when `w` is empty).
language_model make_model(const model_config& c, const weights& w, std::uint64_t seed);

}  // namespace sft_dpo
