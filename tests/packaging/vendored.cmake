# Vendoring without CMake: copies include/ogpsa/ into an empty folder and builds the consumer with
# nothing but the compiler, -std=c++20 and -I flags (ogpsa's copy and Eigen's), with or without
# -fopenmp, then runs it. Run with cmake -DCXX=... -DSOURCE_DIR=... -DEIGEN_INCLUDE=... -DWORK_DIR=...
# [-DOPENMP_FLAG=-fopenmp] -P vendored.cmake.
cmake_minimum_required(VERSION 3.25)
file(REMOVE_RECURSE "${WORK_DIR}")
file(COPY "${SOURCE_DIR}/include/ogpsa" DESTINATION "${WORK_DIR}/third_party")
file(COPY "${SOURCE_DIR}/tests/packaging/consumer/main.cpp" DESTINATION "${WORK_DIR}")
set(command "${CXX}" -std=c++20 -O1 "-I${WORK_DIR}/third_party" "-I${EIGEN_INCLUDE}" ${OPENMP_FLAG}
            "${WORK_DIR}/main.cpp" -o "${WORK_DIR}/consumer")
list(JOIN command " " shown)
message(STATUS "${shown}")
execute_process(COMMAND ${command} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the vendored headers did not compile with only -I flags (exit code ${rc})")
endif()
execute_process(COMMAND "${WORK_DIR}/consumer" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the consumer built from the vendored headers failed (exit code ${rc})")
endif()
