// Entry point of the CUDA benchmarks: records the device in the output's context, and without a
// device says so and exits with 77 (ctest's "skipped").
#include <cstdio>
#include <string>

#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

int main(int argc, char** argv) {
  int devices = 0;
  cudaDeviceProp properties{};
  const cudaError_t status = cudaGetDeviceCount(&devices);
  if (status != cudaSuccess || devices == 0 || cudaGetDeviceProperties(&properties, 0) != cudaSuccess) {
    std::printf("SKIPPED: no CUDA device here (cudaGetDeviceCount: %s, %d devices)\n", cudaGetErrorString(status),
                devices);
    return 77;
  }
  benchmark::AddCustomContext("device", properties.name);
  benchmark::AddCustomContext("multiprocessors", std::to_string(properties.multiProcessorCount));
  benchmark::AddCustomContext("memory_gib", std::to_string(static_cast<double>(properties.totalGlobalMem) / (1 << 30)));
  benchmark::AddCustomContext("l2_mib", std::to_string(properties.l2CacheSize >> 20));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
