#pragma once
// What the CUDA test program does after asking the runtime how many devices there are: run the
// tests, skip them all (exit code 77, which ctest reports as "Skipped"), or fail (exit code 1).
// Kept apart from main() so the decision itself is tested without a device.

#include <string>

#include <cuda_runtime_api.h>

namespace ogpsa::test::cuda {

enum class device_verdict { run, skip, fail };

struct device_presence {
  device_verdict verdict;
  std::string message;  ///< why the tests do not run; empty when they do
};

/// The verdict on `cudaGetDeviceCount` returning `status` and `devices`, with `driver_version`
/// from `cudaDriverGetVersion` (0 where no driver is installed). Only a machine without a device
/// or without a driver skips: the runtime reports a missing driver as
/// `cudaErrorInsufficientDriver`, as it does a driver older than itself, and only the version
/// tells them apart. Any other failure (an old driver, one that cannot start) fails, since skipped
/// tests would report a broken GPU machine as passing.
inline device_presence judge_device_count(cudaError_t status, int devices, int driver_version) {
  if (status == cudaSuccess && devices > 0) return {device_verdict::run, {}};
  const bool no_driver = status == cudaErrorInsufficientDriver && driver_version == 0;
  if (status == cudaSuccess || status == cudaErrorNoDevice || no_driver)
    return {device_verdict::skip, std::string("SKIPPED: no CUDA ") + (no_driver ? "driver" : "device") +
                                      " here (cudaGetDeviceCount: " + cudaGetErrorName(status) + ", " +
                                      std::to_string(devices) + " devices); the CUDA tests run on a machine with a GPU"};
  return {device_verdict::fail, "FAILED: cudaGetDeviceCount returned " + std::string(cudaGetErrorName(status)) +
                                    " (" + cudaGetErrorString(status) + ") with driver version " +
                                    std::to_string(driver_version) + ", runtime version " +
                                    std::to_string(CUDART_VERSION) +
                                    ": the CUDA runtime cannot use this machine's driver or devices"};
}

}  // namespace ogpsa::test::cuda
