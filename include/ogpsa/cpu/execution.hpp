#pragma once
/// \file
/// The CPU execution context: how many threads one call may use.

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "ogpsa/error.hpp"

namespace ogpsa::cpu {

/// How the CPU backend runs; passed to every primitive and held by a projector
/// (`projector(estimator, rule, schedule, ogpsa::cpu::execution{.threads = 4})`).
///
/// Threads come from OpenMP when the program is compiled with it (`-fopenmp`; the CMake target
/// `ogpsa::ogpsa` adds it when OpenMP was found at configure time, see
/// `include/ogpsa/README.md#cpu-backend`). Without OpenMP every call runs on the calling thread.
/// A call runs on at most `threads` threads, the calling one included, whatever OpenMP's default
/// or `Eigen::setNbThreads` (its products run Eigen's kernel on one thread each, see
/// `cpu/detail/gemm.hpp`), and its results do not depend on the number of threads.
///
/// | member    | type | default | meaning                                                        |
/// |-----------|------|---------|----------------------------------------------------------------|
/// | `threads` | int  | 0       | most threads per call; 0 takes OpenMP's default (`OMP_NUM_THREADS`, `omp_set_num_threads`) |
struct execution {
  int threads = 0;
};

/// The number of threads a call may use under `exec`: at least 1.
/// \throws invalid_argument for a negative `threads`.
inline int max_threads(const execution& exec) {
  OGPSA_REQUIRE(exec.threads >= 0, invalid_argument, "ogpsa::cpu::max_threads",
                "execution::threads must be >= 0 (0: OpenMP's default), got " << exec.threads);
#if defined(_OPENMP)
  return exec.threads > 0 ? exec.threads : omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace ogpsa::cpu
