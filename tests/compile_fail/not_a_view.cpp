// A container is not a tensor view; ogpsa::view() makes one.
// expect: tensor_view
#include <ogpsa/ogpsa.hpp>

int main() {
  std::vector<float> g(4);
  ogpsa::published_projector p;
#ifdef OGPSA_COMPILE_FAIL_CONTROL
  p.add_block("w", ogpsa::view(g));
#else
  p.add_block("w", g);
#endif
}
