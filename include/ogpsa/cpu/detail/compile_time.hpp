#pragma once
/// \file
/// Compile-time counts for register-blocked kernels. A kernel's accumulators are arrays that stay
/// in registers only when their sizes and every index are constants: `with_constant` turns a
/// run-time count into a template argument, `unroll` writes a loop over one as straight-line code
/// (a loop is unrolled at -O3 but not at -O2, and unrolling pragmas differ between compilers:
/// nvcc's front end rejects GCC's).

#include <type_traits>
#include <utility>

#include "ogpsa/config.hpp"

namespace ogpsa::cpu::detail {

/// Calls f(std::integral_constant<int, n>{}) for a run-time 1 <= n <= Max; nothing for other n.
template <int Max, class F>
void with_constant(index_t n, F&& f) {
  [&]<int... I>(std::integer_sequence<int, I...>) {
    ((n == I + 1 ? (f(std::integral_constant<int, I + 1>{}), 0) : 0), ...);
  }
  (std::make_integer_sequence<int, Max>{});
}

/// Calls f(std::integral_constant<int, i>{}) for i = 0 .. N - 1, in straight-line code.
template <int N, class F>
void unroll(F&& f) {
  [&]<int... I>(std::integer_sequence<int, I...>) {
    (f(std::integral_constant<int, I>{}), ...);
  }
  (std::make_integer_sequence<int, N>{});
}

}  // namespace ogpsa::cpu::detail
