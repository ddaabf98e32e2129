// Includes the umbrella header and checks one projection, so a broken package fails loudly.
#include <cmath>
#include <cstdio>
#include <vector>

#include <ogpsa/ogpsa.hpp>

int main() {
  std::vector<float> gradient{1.0f, 2.0f, 3.0f}, reference{0.0f, 1.0f, 0.0f};
  ogpsa::published_projector projector;
  const auto block = projector.add_block("w", ogpsa::view(gradient));
  projector.begin_reference_pass();
  projector.feed(block, ogpsa::view(std::as_const(reference)));
  projector.finish_reference_pass();
  projector.project();
  std::printf("ogpsa %d: projected gradient (%g, %g, %g)\n", ogpsa::version, gradient[0], gradient[1],
              gradient[2]);
  return std::abs(gradient[1]) < 1e-6f && gradient[0] == 1.0f && gradient[2] == 3.0f ? 0 : 1;
}
