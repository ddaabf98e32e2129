// <ogpsa/projector.hpp> alone serves a host projector (it brings the host backend); a device one
// is told what it needs.
// expect: for CUDA device views include <ogpsa/cuda.cuh> and compile that file with nvcc
#include <vector>

#include <ogpsa/projector.hpp>

int main() {
#ifdef OGPSA_COMPILE_FAIL_CONTROL
  std::vector<float> g(4), r(4, 1.0f);
  ogpsa::published_projector p;
  const auto id = p.add_block("w", ogpsa::view(g));
  p.begin_reference_pass();
  p.feed(id, ogpsa::view(std::as_const(r)));
  p.finish_reference_pass();
  p.project();
#else
  ogpsa::projector<ogpsa::mean_gradient, ogpsa::orthogonal, ogpsa::every_n_steps,
                   ogpsa::storage<float, float, ogpsa::cuda_memory_tag>> p;
  (void)p;
#endif
}
