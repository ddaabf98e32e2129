// A host view given to a projector whose subspaces live in device memory.
// expect: the view lives in a different memory space than this projector's subspaces
#include <ogpsa/cuda.cuh>

int main() {
  float* g = nullptr;
  ogpsa::projector<ogpsa::mean_gradient, ogpsa::orthogonal, ogpsa::every_n_steps,
                   ogpsa::storage<float, float, ogpsa::cuda_memory_tag>>
      p;
#ifdef OGPSA_COMPILE_FAIL_CONTROL
  p.add_block("w", ogpsa::view<ogpsa::cuda_memory_tag>(g, 4));
#else
  p.add_block("w", ogpsa::view(g, 4));
#endif
}
