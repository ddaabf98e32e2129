// Any type that is not a projection rule is refused by the concept.
// expect: projection_rule
#include <ogpsa/ogpsa.hpp>

struct not_a_rule {};

int main() {
#ifdef OGPSA_COMPILE_FAIL_CONTROL
  ogpsa::projector<ogpsa::mean_gradient, ogpsa::soft> p;
#else
  ogpsa::projector<ogpsa::mean_gradient, not_a_rule> p;
#endif
  (void)p;
}
