#include <doctest/doctest.h>

#include "device_presence.hpp"

namespace tc = ogpsa::test::cuda;
using tc::device_verdict;

namespace {

constexpr int driver_13_0 = 13000, driver_12_4 = 12040;

}  // namespace

TEST_CASE("the CUDA tests run when the runtime reports a device") {
  const auto presence = tc::judge_device_count(cudaSuccess, 1, driver_13_0);
  CHECK(presence.verdict == device_verdict::run);
  CHECK(presence.message.empty());
}

TEST_CASE("the CUDA tests are skipped only where there is no device or no driver") {
  struct no_gpu {
    cudaError_t status;
    int devices, driver_version;
    const char* missing;
  };
  for (const no_gpu& machine : {no_gpu{cudaErrorNoDevice, 0, driver_13_0, "no CUDA device"},
                                no_gpu{cudaSuccess, 0, driver_13_0, "no CUDA device"},
                                no_gpu{cudaErrorInsufficientDriver, 0, 0, "no CUDA driver"}}) {
    CAPTURE(machine.status);
    const auto presence = tc::judge_device_count(machine.status, machine.devices, machine.driver_version);
    CHECK(presence.verdict == device_verdict::skip);
    CHECK(presence.message.find(machine.missing) != std::string::npos);
  }
}

TEST_CASE("a runtime that cannot count the devices fails the CUDA tests and says why") {
  // A driver older than the runtime, or one that cannot start, must not read as "no GPU here":
  // skipped tests would report a broken machine as passing.
  for (const cudaError_t status : {cudaErrorInsufficientDriver, cudaErrorInitializationError}) {
    CAPTURE(status);
    const auto presence = tc::judge_device_count(status, 0, driver_12_4);
    CHECK(presence.verdict == device_verdict::fail);
    CHECK(presence.message.find(cudaGetErrorName(status)) != std::string::npos);
    CHECK(presence.message.find(cudaGetErrorString(status)) != std::string::npos);
    CHECK(presence.message.find("driver version 12040") != std::string::npos);
  }
}
