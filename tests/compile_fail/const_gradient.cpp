// A read-only view cannot be registered as a gradient: the projector writes in place.
// expect: the projector writes projected gradients in place: pass a writable view
#include <ogpsa/ogpsa.hpp>

int main() {
  std::vector<float> g(4);
  ogpsa::published_projector p;
#ifdef OGPSA_COMPILE_FAIL_CONTROL
  p.add_block("w", ogpsa::view(g));
#else
  p.add_block("w", ogpsa::view(std::as_const(g)));
#endif
}
