# Reads the library version from <ogpsa/version.hpp>, its single source of truth.
include_guard(GLOBAL)

function(ogpsa_read_version header out)
  file(STRINGS "${header}" lines REGEX "^#define OGPSA_VERSION_(MAJOR|MINOR|PATCH) ")
  foreach(part MAJOR MINOR PATCH)
    string(REGEX MATCH "OGPSA_VERSION_${part} ([0-9]+)" _ "${lines}")
    set(${part} "${CMAKE_MATCH_1}")
  endforeach()
  set(${out} "${MAJOR}.${MINOR}.${PATCH}" PARENT_SCOPE)
endfunction()
