# `pip install --no-build-isolation ./python`, as the README says, from a copy of the repository's
# sources, into a private folder; then a fresh interpreter imports the installed package, which must
# load its own compiled operators (not the build's). The operators are this build's
# (OGPSA_OPS_LIBRARY), so the test checks the packaging in seconds; setup.py's CMake build of them
# is the one the project's build runs anyway.
#
#   cmake -DPYTHON=<interpreter> -DSOURCE_DIR=<repository> -DWORK_DIR=<scratch> -DLIBRARY=<_ogpsa_ops.so> -P pip_install.cmake
foreach(var PYTHON SOURCE_DIR WORK_DIR LIBRARY)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "pip_install.cmake: ${var} is not set")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/source")
foreach(item CMakeLists.txt LICENSE cmake include python)
  file(COPY "${SOURCE_DIR}/${item}" DESTINATION "${WORK_DIR}/source")
endforeach()

execute_process(
  COMMAND "${CMAKE_COMMAND}" -E env "OGPSA_OPS_LIBRARY=${LIBRARY}" PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1
          "${PYTHON}" -m pip install --no-build-isolation --no-deps --target "${WORK_DIR}/site" ./python
  WORKING_DIRECTORY "${WORK_DIR}/source"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pip install failed (${rc}):\n${out}\n${err}")
endif()

set(check "import os, ogpsa, torch; \
assert os.path.dirname(ogpsa.__file__) == os.path.join(os.environ['SITE'], 'ogpsa'), ogpsa.__file__; \
p = torch.classes.ogpsa.Projector('exact_svd', {'rank': '2'}, 'orthogonal', {}, 1, 'float32', 'float32', 'cpu'); \
print('installed', ogpsa.__version__, torch.ops.ogpsa.settings(p)['estimator.rank'])")
execute_process(
  COMMAND "${CMAKE_COMMAND}" -E env --unset=OGPSA_OPS_LIBRARY --unset=PYTHONPATH "SITE=${WORK_DIR}/site"
          "PYTHONPATH=${WORK_DIR}/site" "${PYTHON}" -c "${check}"
  WORKING_DIRECTORY "${WORK_DIR}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "installed [0-9.]+ 2")
  message(FATAL_ERROR "the installed package does not work (${rc}):\n${out}\n${err}")
endif()
message(STATUS "${out}")
