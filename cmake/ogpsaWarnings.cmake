# Warning flags for the project's own tests, examples and benchmarks (never for consumers).
include_guard(GLOBAL)

add_library(ogpsa_warnings INTERFACE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(ogpsa_warnings INTERFACE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion -Werror)
endif()
