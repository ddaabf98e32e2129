// A device view given to a projector whose subspaces live in host memory.
// expect: the view lives in a different memory space than this projector's subspaces
#include <ogpsa/ogpsa.hpp>

int main() {
  float* g = nullptr;
  ogpsa::published_projector p;
#ifdef OGPSA_COMPILE_FAIL_CONTROL
  p.add_block("w", ogpsa::view(g, 4));
#else
  p.add_block("w", ogpsa::view<ogpsa::cuda_memory_tag>(g, 4));
#endif
}
