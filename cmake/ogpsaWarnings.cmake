# Warning flags for the project's own tests, examples and benchmarks (never for consumers).
include_guard(GLOBAL)

add_library(ogpsa_warnings INTERFACE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(ogpsa_warnings INTERFACE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion -Werror)
endif()

# GCC 12.0 to 12.2 flag their own AVX-512 intrinsics (_mm512_undefined_*, `__Y = __Y`) as maybe
# uninitialized once inlined into Eigen's matrix-product kernels under -march with AVX-512 (the bench
# preset); GCC 12.3 fixed its headers.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
   AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 12.3)
  target_compile_options(ogpsa_warnings INTERFACE -Wno-maybe-uninitialized)
endif()
