// Projects a LibTorch tensor through the installed component torch, so a broken package fails loudly.
#include <cmath>
#include <cstdio>

#include <ATen/ATen.h>

#include <ogpsa/ogpsa.hpp>
#include <ogpsa/torch/tensor_view.hpp>

int main() {
  const at::Tensor gradient = at::arange(1, 4, at::kFloat), reference = at::zeros({3});
  reference[1] = 1.0f;
  ogpsa::published_projector projector;
  const auto block = projector.add_block("w", ogpsa::torch::flat_view<float>(gradient));
  projector.begin_reference_pass();
  projector.feed(block, ogpsa::torch::flat_view<const float>(reference));
  projector.finish_reference_pass();
  projector.project();
  const float* g = gradient.data_ptr<float>();
  std::printf("ogpsa %d with LibTorch: projected gradient (%g, %g, %g)\n", ogpsa::version, g[0], g[1], g[2]);
  return std::abs(g[1]) < 1e-6f && g[0] == 1.0f && g[2] == 3.0f ? 0 : 1;
}
