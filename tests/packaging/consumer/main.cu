// Includes the CUDA umbrella header through the installed `cuda` component. Projects one block on
// the device when there is one; without a device, building and linking is what is checked.
#include <cmath>
#include <cstdio>
#include <vector>

#include <ogpsa/cuda.cuh>

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("ogpsa %d CUDA consumer: built and linked; no device to run on\n", ogpsa::version);
    return 0;
  }
  using projector = ogpsa::projector<ogpsa::mean_gradient, ogpsa::orthogonal, ogpsa::every_n_steps,
                                     ogpsa::storage<float, float, ogpsa::cuda_memory_tag>>;
  const std::vector<float> gradient{1.0f, 2.0f, 3.0f}, reference{0.0f, 1.0f, 0.0f};
  float* buffers = nullptr;
  if (cudaMalloc(&buffers, 6 * sizeof(float)) != cudaSuccess) return 1;
  cudaMemcpy(buffers, gradient.data(), 3 * sizeof(float), cudaMemcpyHostToDevice);
  cudaMemcpy(buffers + 3, reference.data(), 3 * sizeof(float), cudaMemcpyHostToDevice);
  std::vector<float> result(3);
  {
    projector p;
    const auto block = p.add_block("w", ogpsa::view<ogpsa::cuda_memory_tag>(buffers, 3));
    p.begin_reference_pass();
    p.feed(block, ogpsa::view<ogpsa::cuda_memory_tag>(static_cast<const float*>(buffers + 3), 3));
    p.finish_reference_pass();
    p.project();
    p.exec().synchronize();
  }
  cudaMemcpy(result.data(), buffers, 3 * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(buffers);
  std::printf("ogpsa %d CUDA consumer: projected gradient (%g, %g, %g)\n", ogpsa::version, result[0], result[1], result[2]);
  return std::abs(result[1]) < 1e-6f && result[0] == 1.0f && result[2] == 3.0f ? 0 : 1;
}
