// The README's usage example: protect a capability subspace while following a safety gradient.
#include <cstdio>
#include <vector>

#include <ogpsa/ogpsa.hpp>

int main() {
  std::vector<float> weight_grad(512 * 256);            // your optimizer's gradient buffer
  std::vector<float> reference_grad(weight_grad.size());  // scratch buffer for reference passes

  // Rank-8 matrix-side basis over the layer's input space, refreshed every 30 steps.
  ogpsa::projector<ogpsa::exact_svd> projector(ogpsa::exact_svd{.rank = 8});
  const auto w = projector.add_block("fc.weight", ogpsa::view(weight_grad.data(), 512, 256),
                                     ogpsa::family::right);

  for (int step = 0; step < 3; ++step) {
    if (projector.refresh_due()) {
      projector.begin_reference_pass();
      for (int batch = 0; batch < 4; ++batch) {
        for (std::size_t i = 0; i < reference_grad.size(); ++i)  // stand-in for a backward pass
          reference_grad[i] = float((i * 7 + batch * 13) % 17) - 8.0f;
        projector.feed(w, ogpsa::view(std::as_const(reference_grad).data(), 512, 256));
      }
      projector.finish_reference_pass();
    }
    for (std::size_t i = 0; i < weight_grad.size(); ++i) weight_grad[i] = float(i % 5) - 2.0f;
    projector.project();  // weight_grad is now orthogonal to the reference subspace
  }
  std::printf("rank %ld basis protects fc.weight\n", long(projector.subspace_of(w)->rank()));
}
