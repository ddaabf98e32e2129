# The CUDA backend: `ogpsa::cuda`, an INTERFACE target for <ogpsa/cuda.cuh> that adds the CUDA
# runtime, cuBLAS, cuSOLVER and CCCL (Thrust, CUB, libcu++) from the toolkit's own CMake
# packages to ogpsa::ogpsa.
#
# OGPSA_ENABLE_CUDA=ON requires a CUDA compiler; AUTO builds the backend's tests and benchmarks
# whenever one is found (nvcc on PATH, CUDACXX, or CMake's default locations such as
# /usr/local/cuda/bin). Sets OGPSA_CUDA_FOUND.
include_guard(GLOBAL)
include(CheckLanguage)

set(OGPSA_CUDA_FOUND FALSE)
if(NOT CMAKE_CUDA_COMPILER)
  check_language(CUDA)
endif()
if(NOT CMAKE_CUDA_COMPILER)
  if(OGPSA_ENABLE_CUDA STREQUAL "AUTO")
    message(STATUS "ogpsa: no CUDA compiler found; the CUDA backend is not built")
    return()
  endif()
  message(FATAL_ERROR "ogpsa: OGPSA_ENABLE_CUDA=ON, but no CUDA compiler was found. Put nvcc on "
                      "PATH or set CMAKE_CUDA_COMPILER (for example /usr/local/cuda/bin/nvcc).")
endif()

# A fixed list, never `native`: configuring must work on machines without a GPU (CI). 80 is
# A100, 90 H100/H200. Only set when this project enables CUDA itself.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 80 90 CACHE STRING "CUDA architectures ogpsa's tests and benchmarks are built for")
endif()
enable_language(CUDA)

find_package(CUDAToolkit 12.0 REQUIRED)
# CUDA 13 keeps Thrust and CUB under include/cccl; the toolkit's CCCL package knows where.
find_package(CCCL CONFIG REQUIRED HINTS "${CUDAToolkit_LIBRARY_DIR}/cmake")

add_library(ogpsa_cuda INTERFACE)
add_library(ogpsa::cuda ALIAS ogpsa_cuda)
set_target_properties(ogpsa_cuda PROPERTIES EXPORT_NAME cuda)
target_link_libraries(ogpsa_cuda INTERFACE ogpsa::ogpsa CUDA::cudart CUDA::cublas CUDA::cusolver CCCL::CCCL)
# CMake learned C++20 for nvcc after 3.25: older versions get the flag itself.
if("cuda_std_20" IN_LIST CMAKE_CUDA_COMPILE_FEATURES)
  target_compile_features(ogpsa_cuda INTERFACE cuda_std_20)
else()
  target_compile_options(ogpsa_cuda INTERFACE "$<$<COMPILE_LANGUAGE:CUDA>:-std=c++20>")
endif()

set(OGPSA_CUDA_FOUND TRUE)
message(STATUS "ogpsa: CUDA backend with ${CMAKE_CUDA_COMPILER} ${CMAKE_CUDA_COMPILER_VERSION}, "
               "architectures ${CMAKE_CUDA_ARCHITECTURES}")
