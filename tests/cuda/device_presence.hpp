#pragma once
// What the CUDA test program does after asking the runtime how many devices there are: run the
// tests, skip them all (exit code 77, which ctest reports as "Skipped"), or fail. Kept apart from
// main() so the decision itself is tested without a device.

#include <string>

#include <cuda_runtime_api.h>

namespace ogpsa::test::cuda {

enum class device_verdict { run, skip, fail };

struct device_presence {
  device_verdict verdict;
  std::string message;  ///< why the tests do not run; empty when they do
};

/// The verdict on `cudaGetDeviceCount` returning `status` and `devices`.
inline device_presence judge_device_count(cudaError_t status, int devices) {
  if (status == cudaSuccess && devices > 0) return {device_verdict::run, {}};
  return {device_verdict::skip, "SKIPPED: no CUDA device here (cudaGetDeviceCount: " +
                                    std::string(cudaGetErrorString(status)) + ", " + std::to_string(devices) +
                                    " devices); the CUDA tests run on a machine with a GPU"};
}

}  // namespace ogpsa::test::cuda
