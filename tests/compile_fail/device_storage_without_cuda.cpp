// Device storage needs the CUDA backend header.
// expect: no ogpsa backend serves this memory space
#include <ogpsa/ogpsa.hpp>

int main() {
#ifdef OGPSA_COMPILE_FAIL_CONTROL
  ogpsa::projector<ogpsa::mean_gradient, ogpsa::orthogonal, ogpsa::every_n_steps, ogpsa::storage<float>> p;
#else
  ogpsa::projector<ogpsa::mean_gradient, ogpsa::orthogonal, ogpsa::every_n_steps,
                   ogpsa::storage<float, float, ogpsa::cuda_memory_tag>> p;
#endif
  (void)p;
}
