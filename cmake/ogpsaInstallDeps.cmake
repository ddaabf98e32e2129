# Installs missing Debian packages at configure time, for the presets' one-command set-up.
#
#   ogpsa_require_debian_packages(<purpose> <package>...)
#
# Does nothing unless OGPSA_INSTALL_DEPS is ON (the presets set it; consumers leave it OFF).
# Packages already installed (per dpkg) are skipped. Missing ones are installed with apt-get,
# running `apt-get update` first when the package lists are empty or older than a week, and once
# more if the install fails (stale lists). Without root or apt, configuring stops with a message
# that names the packages to install by hand.
include_guard(GLOBAL)

function(_ogpsa_missing_packages out)
  find_program(OGPSA_DPKG_QUERY dpkg-query)
  set(missing "")
  foreach(package IN LISTS ARGN)
    set(status "")
    if(OGPSA_DPKG_QUERY)
      execute_process(COMMAND "${OGPSA_DPKG_QUERY}" -W "-f=\${Status}" "${package}"
                      OUTPUT_VARIABLE status ERROR_QUIET)
    endif()
    if(NOT status MATCHES "install ok installed")
      list(APPEND missing "${package}")
    endif()
  endforeach()
  set(${out} "${missing}" PARENT_SCOPE)
endfunction()

function(_ogpsa_apt_lists_stale out)
  file(GLOB lists "/var/lib/apt/lists/*_Packages*")
  set(stale TRUE)
  if(lists)
    list(GET lists 0 first)
    file(TIMESTAMP "${first}" listed "%s" UTC)
    string(TIMESTAMP now "%s" UTC)
    math(EXPR age "${now} - ${listed}")
    if(age LESS 604800)
      set(stale FALSE)
    endif()
  endif()
  set(${out} ${stale} PARENT_SCOPE)
endfunction()

function(_ogpsa_apt_get result)
  execute_process(COMMAND "${CMAKE_COMMAND}" -E env DEBIAN_FRONTEND=noninteractive
                          "${OGPSA_APT_GET}" ${ARGN}
                  RESULT_VARIABLE rc)
  set(${result} ${rc} PARENT_SCOPE)
endfunction()

function(ogpsa_require_debian_packages purpose)
  if(NOT OGPSA_INSTALL_DEPS)
    return()
  endif()
  _ogpsa_missing_packages(missing ${ARGN})
  if(NOT missing)
    return()
  endif()
  list(JOIN missing " " missing_text)
  find_program(OGPSA_APT_GET apt-get)
  execute_process(COMMAND id -u OUTPUT_VARIABLE uid OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT OGPSA_APT_GET OR NOT OGPSA_DPKG_QUERY OR NOT uid STREQUAL "0")
    message(FATAL_ERROR
      "ogpsa: ${purpose} needs Debian packages that are not installed: ${missing_text}\n"
      "They cannot be installed automatically here (this needs root and apt-get). Install them "
      "with:\n  sudo apt-get install ${missing_text}\n"
      "or configure with -DOGPSA_INSTALL_DEPS=OFF and provide the dependencies yourself.")
  endif()
  message(STATUS "ogpsa: installing for ${purpose}: ${missing_text}")
  _ogpsa_apt_lists_stale(stale)
  if(stale)
    _ogpsa_apt_get(rc update)
  endif()
  _ogpsa_apt_get(rc install -y --no-install-recommends ${missing})
  if(NOT rc EQUAL 0 AND NOT stale)
    _ogpsa_apt_get(rc update)
    _ogpsa_apt_get(rc install -y --no-install-recommends ${missing})
  endif()
  _ogpsa_missing_packages(still_missing ${missing})
  if(NOT rc EQUAL 0 OR still_missing)
    message(FATAL_ERROR "ogpsa: apt-get could not install: ${still_missing} (exit code ${rc})")
  endif()
endfunction()
