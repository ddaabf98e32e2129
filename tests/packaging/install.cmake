# Installs the build tree into an emptied prefix, so the consumer sees only what install rules put there.
file(REMOVE_RECURSE "${PREFIX}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}"
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed with ${rc}")
endif()
if(NOT EXISTS "${PREFIX}/include/ogpsa/ogpsa.hpp" OR NOT EXISTS "${PREFIX}/share/cmake/ogpsa/ogpsaConfig.cmake")
  message(FATAL_ERROR "the install prefix lacks the headers or the package config")
endif()
