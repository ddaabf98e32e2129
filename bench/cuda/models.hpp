#pragma once
// The parameter tensors of LLaMA-style decoders, the shapes the whole-model benchmarks project.
// bench/cuda/published_torch.py builds the same lists (same formula) for the PyTorch peer.

#include <string>
#include <vector>

#include <ogpsa/config.hpp>

namespace ogpsa::bench::cuda {

struct tensor_shape {
  std::string name;
  index_t rows;  // out features (PyTorch weight rows), or the length of a vector
  index_t cols;  // in features, 1 for vectors
  index_t size() const { return rows * cols; }
};

struct decoder {
  const char* name;
  index_t layers, hidden, intermediate, kv, vocab;
  bool tied;  // input and output embeddings shared
};

/// ~110M parameters: 12 layers of width 768 with a SwiGLU MLP, tied embeddings.
inline constexpr decoder decoder_100m{"100M", 12, 768, 2048, 768, 32000, true};
/// ~1.1B parameters: TinyLlama's shapes (22 layers, width 2048, grouped-query attention).
inline constexpr decoder decoder_1b{"1B", 22, 2048, 5632, 256, 32000, false};

inline std::vector<tensor_shape> tensors(const decoder& d) {
  std::vector<tensor_shape> out{{"embed_tokens", d.vocab, d.hidden}};
  for (index_t l = 0; l < d.layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    out.push_back({p + "input_layernorm", d.hidden, 1});
    out.push_back({p + "q_proj", d.hidden, d.hidden});
    out.push_back({p + "k_proj", d.kv, d.hidden});
    out.push_back({p + "v_proj", d.kv, d.hidden});
    out.push_back({p + "o_proj", d.hidden, d.hidden});
    out.push_back({p + "post_attention_layernorm", d.hidden, 1});
    out.push_back({p + "gate_proj", d.intermediate, d.hidden});
    out.push_back({p + "up_proj", d.intermediate, d.hidden});
    out.push_back({p + "down_proj", d.hidden, d.intermediate});
  }
  out.push_back({"norm", d.hidden, 1});
  if (!d.tied) out.push_back({"lm_head", d.vocab, d.hidden});
  return out;
}

inline index_t parameters(const std::vector<tensor_shape>& shapes) {
  index_t n = 0;
  for (const tensor_shape& s : shapes) n += s.size();
  return n;
}

}  // namespace ogpsa::bench::cuda
