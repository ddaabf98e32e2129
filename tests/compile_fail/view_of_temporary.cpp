// Viewing a temporary vector would dangle.
// expect: deleted
#include <ogpsa/ogpsa.hpp>

int main() {
#ifdef OGPSA_COMPILE_FAIL_CONTROL
  std::vector<float> g(4);
  auto v = ogpsa::view(g);
#else
  auto v = ogpsa::view(std::vector<float>(4));
#endif
  (void)v;
}
