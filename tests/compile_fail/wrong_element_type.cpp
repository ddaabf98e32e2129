// A double gradient given to a float projector.
// expect: the view's element type differs from the projector's gradient type
#include <ogpsa/ogpsa.hpp>

int main() {
#ifdef OGPSA_COMPILE_FAIL_CONTROL
  std::vector<float> g(4);
#else
  std::vector<double> g(4);
#endif
  ogpsa::published_projector p;
  p.add_block("w", ogpsa::view(g));
}
