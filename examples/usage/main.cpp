// The README's usage example: keep a layer's safety updates out of its capability subspace.
#include <cmath>
#include <cstdio>
#include <vector>

#include <ogpsa/ogpsa.hpp>

// Stand-ins for your framework's backward passes, writing into the given buffers.
void reference_backward(std::vector<float>& g, int batch) {
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = std::sin(0.01f * float(i % 256) * float(batch + 1));
}
void safety_backward(std::vector<float>& g, int step) {
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = std::cos(0.003f * float(i) + float(step));
}

int main() {
  std::vector<float> grad(512 * 256), reference(grad.size());  // optimizer's buffer, scratch buffer
  ogpsa::projector<ogpsa::exact_svd> projector(ogpsa::exact_svd{.rank = 8}, {}, ogpsa::every_n_steps{30});
  const auto fc = projector.add_block("fc.weight", ogpsa::view(grad.data(), 512, 256), ogpsa::family::right);

  for (int step = 0; step < 100; ++step) {
    if (projector.refresh_due()) {  // re-estimate the capability subspace at the current weights
      projector.begin_reference_pass();
      for (int batch = 0; batch < 8; ++batch) {
        reference_backward(reference, batch);
        projector.feed(fc, ogpsa::view(std::as_const(reference).data(), 512, 256));
      }
      projector.finish_reference_pass();
    }
    safety_backward(grad, step);
    projector.project();  // grad is now orthogonal to the capability subspace; clip, then step
  }
  std::printf("fc.weight: rank-%ld input-space basis, %zu refreshes\n",
              long(projector.subspace_of(fc)->rank()), projector.refreshes());
}
