# The LibTorch integration: `ogpsa::torch` for <ogpsa/torch.hpp>, its tests and the examples that
# train with LibTorch. Debian's libtorch runs on the reference BLAS (about 10x slower) unless an
# optimized one is installed, hence libopenblas0-pthread.
include_guard(GLOBAL)

ogpsa_require_debian_packages("the LibTorch integration" libtorch-dev libgloo-dev libopenblas0-pthread)
find_package(Torch REQUIRED)

add_library(ogpsa_torch INTERFACE)
add_library(ogpsa::torch ALIAS ogpsa_torch)
target_link_libraries(ogpsa_torch INTERFACE ogpsa::ogpsa torch)
