// Entry point of the tests that need a CUDA device. Without one (or without a driver), every test
// is skipped: the program says why and exits with 77, which ctest reports as "Skipped". A runtime
// that cannot count the devices (a driver too old for it, say) fails every test instead. Queries (listing the
// tests, which ctest does at build time) always work.
#define DOCTEST_CONFIG_IMPLEMENT
#include <cstdio>
#include <string>

#include <cuda_runtime_api.h>
#include <doctest/doctest.h>

#include "run_banner.hpp"

DOCTEST_REGISTER_LISTENER("ogpsa_run_banner", 1, ogpsa::test::run_banner);

#include "device_presence.hpp"

namespace {

/// doctest's informational flags (also spelled with its "dt-" prefix): they run no test.
bool only_queries(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (const auto at = arg.find("dt-"); at <= 2 && at == arg.find_first_not_of('-')) arg.erase(at, 3);
    for (const char* query : {"--list-test-cases", "--list-test-suites", "--list-reporters", "-ltc", "-lts", "-lr",
                              "--help", "-h", "-?", "--version", "-v", "--count", "-c"})
      if (arg == query) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (!only_queries(argc, argv)) {
    int devices = 0, driver_version = 0;
    const cudaError_t status = cudaGetDeviceCount(&devices);
    if (cudaDriverGetVersion(&driver_version) != cudaSuccess) driver_version = -1;  // unknown: not "none"
    const auto presence = ogpsa::test::cuda::judge_device_count(status, devices, driver_version);
    if (presence.verdict == ogpsa::test::cuda::device_verdict::skip) {
      std::printf("%s\n", presence.message.c_str());
      return 77;
    }
    if (presence.verdict == ogpsa::test::cuda::device_verdict::fail) {
      std::fprintf(stderr, "%s\n", presence.message.c_str());
      return 1;
    }
  }
  doctest::Context context(argc, argv);
  return context.run();
}
