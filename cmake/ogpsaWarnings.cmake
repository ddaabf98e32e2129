# Warning flags for the project's own tests, examples and benchmarks (never for consumers).
include_guard(GLOBAL)

# Warnings are errors with OGPSA_WERROR (the presets turn it on): off by default, since another
# GCC or nvcc version than the ones the code was tested with may warn where these do not.
add_library(ogpsa_warnings INTERFACE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(ogpsa_warnings INTERFACE
    "$<$<COMPILE_LANGUAGE:CXX>:-Wall;-Wextra;-Wpedantic;-Wshadow;-Wconversion;-Wno-sign-conversion>"
    # nvcc: the host compiler's warnings on the code it generates (without -Wpedantic, which
    # objects to nvcc's line markers).
    "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wshadow,-Wconversion,-Wno-sign-conversion>")
  if(OGPSA_WERROR)
    target_compile_options(ogpsa_warnings INTERFACE
      "$<$<COMPILE_LANGUAGE:CXX>:-Werror>"
      # nvcc's own diagnostics as errors, and the host compiler's on the code it generates.
      "$<$<COMPILE_LANGUAGE:CUDA>:SHELL:-Werror all-warnings>"
      "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Werror>")
  endif()
  # Eigen never runs on the device in ogpsa; without this, nvcc warns about the device
  # annotations Eigen's headers put on host code.
  target_compile_definitions(ogpsa_warnings INTERFACE "$<$<COMPILE_LANGUAGE:CUDA>:EIGEN_NO_CUDA>")
endif()

# GCC 12.0 to 12.2 flag their own AVX-512 intrinsics (_mm512_undefined_*, `__Y = __Y`) as maybe
# uninitialized once inlined into Eigen's matrix-product kernels under -march with AVX-512 (the bench
# preset); GCC 12.3 fixed its headers.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
   AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 12.3)
  target_compile_options(ogpsa_warnings INTERFACE -Wno-maybe-uninitialized)
endif()
