# Checks that the object file EXTERN refers to Eigen's Jacobi SVD of a double matrix without
# defining it, while DEFAULT (the same source without OGPSA_EXTERN_TEMPLATES) defines it.
# Usage: cmake -DNM=<nm> -DDEFAULT=<object> -DEXTERN=<object> -P check_symbols.cmake
cmake_minimum_required(VERSION 3.25)

# The nm type letters of the symbol JacobiSVD<MatrixXd>::compute in OBJECT ("U" undefined,
# "W", "T" or a local "t" defined), as a list.
function(compute_symbol_types out object)
  execute_process(COMMAND "${NM}" -C "${object}" OUTPUT_VARIABLE symbols RESULT_VARIABLE failed)
  if(failed)
    message(FATAL_ERROR "${NM} could not read ${object}")
  endif()
  string(REGEX MATCHALL "[^\n]* ([A-Za-z]) Eigen::JacobiSVD<Eigen::Matrix<double[^\n]*::compute\\(" lines "${symbols}")
  set(types "")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^[0-9a-f ]* ([A-Za-z]) .*" "\\1" type "${line}")
    list(APPEND types "${type}")
  endforeach()
  set(${out} "${types}" PARENT_SCOPE)
endfunction()

compute_symbol_types(default_types "${DEFAULT}")
compute_symbol_types(extern_types "${EXTERN}")
message(STATUS "JacobiSVD<MatrixXd>::compute: '${default_types}' by default, '${extern_types}' with OGPSA_EXTERN_TEMPLATES")
if(NOT default_types MATCHES "[TtWw]")
  message(FATAL_ERROR "the default object does not define JacobiSVD<MatrixXd>::compute: the probe no longer uses it")
endif()
if(NOT extern_types STREQUAL "U")
  message(FATAL_ERROR "with OGPSA_EXTERN_TEMPLATES the object should only refer to JacobiSVD<MatrixXd>::compute, nm says '${extern_types}'")
endif()
