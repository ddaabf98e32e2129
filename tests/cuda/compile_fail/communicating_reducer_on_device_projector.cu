// A reducer that sums host buffers given to a projector whose coefficients live in device memory.
// expect: this communicating reducer cannot sum the backend's packed coefficients
#include <span>

#include <ogpsa/cuda.cuh>

namespace {

struct host_sums {
  static constexpr bool communicates = true;
  ogpsa::rank_position position() const { return {0, 2}; }
  void sum(std::span<float>) {}
  void sum(std::span<double>) {}
};

#ifdef OGPSA_COMPILE_FAIL_CONTROL
using reducer = ogpsa::local_reducer;
#else
using reducer = host_sums;
#endif

}  // namespace

int main() {
  ogpsa::projector<ogpsa::mean_gradient, ogpsa::orthogonal, ogpsa::every_n_steps,
                   ogpsa::storage<float, float, ogpsa::cuda_memory_tag>, reducer>
      p;
  (void)p;
}
