// A trainer translation unit: the umbrella and one exact_svd projector, used as a trainer uses it.
#include <utility>
#include <vector>

#include <ogpsa/ogpsa.hpp>

int main() {
  std::vector<float> grad(512 * 256), reference(grad.size());
  ogpsa::projector<ogpsa::exact_svd> projector(ogpsa::exact_svd{.rank = 8}, {}, ogpsa::every_n_steps{30});
  const auto fc = projector.add_block("fc.weight", ogpsa::view(grad.data(), 512, 256), ogpsa::family::right);
  if (projector.refresh_due()) {
    projector.begin_reference_pass();
    projector.feed(fc, ogpsa::view(std::as_const(reference).data(), 512, 256));
    projector.finish_reference_pass();
  }
  projector.project();
  return projector.refreshes() == 1 ? 0 : 1;
}
