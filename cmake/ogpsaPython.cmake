# The Python package: the interpreter that runs its tests and examples, which must import a torch
# built from the same LibTorch the operators link (Debian's python3-torch for Debian's libtorch).
# `python3` first on PATH may be another interpreter without torch (a pyenv one), so candidates are
# tried in turn: OGPSA_PYTHON when set, /usr/bin/python3, then python3 on PATH.
include_guard(GLOBAL)

ogpsa_require_debian_packages("the Python package" python3-torch python3-numpy python3-pip python3-setuptools)

set(OGPSA_PYTHON "" CACHE FILEPATH "Python interpreter that imports torch, for the Python tests (found when empty)")

function(_ogpsa_torch_version python out)
  execute_process(COMMAND "${python}" -c "import torch; print(torch.__version__.split('+')[0])"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE version ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(rc EQUAL 0)
    set(${out} "${version}" PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()

function(ogpsa_find_python)
  find_program(_ogpsa_path_python3 NAMES python3 NO_CACHE)
  set(candidates ${OGPSA_PYTHON} /usr/bin/python3 ${_ogpsa_path_python3})
  set(tried "")
  foreach(candidate IN LISTS candidates)
    if(NOT EXISTS "${candidate}")
      continue()
    endif()
    _ogpsa_torch_version("${candidate}" version)
    if(version AND version VERSION_EQUAL Torch_VERSION)
      set(OGPSA_PYTHON "${candidate}" CACHE FILEPATH "Python interpreter that imports torch" FORCE)
      message(STATUS "ogpsa: Python tests run with ${candidate} (torch ${version})")
      return()
    endif()
    list(APPEND tried "${candidate} (torch: ${version})")
  endforeach()
  list(JOIN tried ", " tried_text)
  message(FATAL_ERROR "ogpsa: no Python interpreter imports torch ${Torch_VERSION}, the LibTorch the operators "
                      "link; tried: ${tried_text}. Set OGPSA_PYTHON to one that does.")
endfunction()

ogpsa_find_python()
