# One translation unit per public header, each including its header twice, so every header is
# proven to compile on its own (and to be guarded against double inclusion).
#
#   ogpsa_add_header_tests(<target> BASE_DIR <dir> [EXTENSION <ext>] [MATCHING <regex>]
#                          [EXCLUDE_MATCHING <regex>] [LINK <target>...])
#
# Headers are paths relative to BASE_DIR (`ogpsa/projector.hpp`); MATCHING keeps only those that
# match, EXCLUDE_MATCHING drops those that match (an integration's headers need its library).
include_guard(GLOBAL)

function(ogpsa_add_header_tests target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "BASE_DIR;EXTENSION;MATCHING;EXCLUDE_MATCHING"
                        "LINK;LANGUAGE_FILES")
  if(NOT arg_EXTENSION)
    set(arg_EXTENSION "hpp")
  endif()
  file(GLOB_RECURSE headers RELATIVE "${arg_BASE_DIR}" CONFIGURE_DEPENDS
       "${arg_BASE_DIR}/ogpsa/*.${arg_EXTENSION}")
  set(sources "")
  foreach(header IN LISTS headers)
    if((arg_MATCHING AND NOT header MATCHES "${arg_MATCHING}")
       OR (arg_EXCLUDE_MATCHING AND header MATCHES "${arg_EXCLUDE_MATCHING}"))
      continue()
    endif()
    string(MAKE_C_IDENTIFIER "${header}" stem)
    set(source "${CMAKE_CURRENT_BINARY_DIR}/${target}/${stem}.cpp")
    file(CONFIGURE OUTPUT "${source}" CONTENT
         "#include <${header}>\n#include <${header}>\n" @ONLY)
    list(APPEND sources "${source}")
  endforeach()
  add_library(${target} OBJECT ${sources})
  target_link_libraries(${target} PRIVATE ${arg_LINK})
endfunction()
