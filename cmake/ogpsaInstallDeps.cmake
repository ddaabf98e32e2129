# Installs missing Debian packages at configure time, for the presets' one-command set-up.
#
#   ogpsa_require_debian_packages(<purpose> <package>...)
#
# Does nothing unless OGPSA_INSTALL_DEPS is ON (the presets set it; consumers leave it OFF).
# Packages already installed (per dpkg) are skipped. Missing ones are installed with apt-get,
# running `apt-get update` first when the package lists are empty or older than a week, and once
# more if the install fails (stale lists). Without root or apt, configuring stops with a message
# that names the packages to install by hand.
#
# Another package manager may hold apt's locks (unattended upgrades right after boot, a second
# configure): every apt-get call waits for them up to OGPSA_APT_LOCK_TIMEOUT seconds (default 600),
# saying which lock it waits for and who holds it, and fails with that message after the timeout.
include_guard(GLOBAL)

set(OGPSA_APT_LOCK_TIMEOUT 600 CACHE STRING "Seconds an apt-get call of the dependency installer waits for apt's locks")

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

# Runs apt-get with ARGN, waiting for apt's locks: dpkg's frontend lock through apt's own
# DPkg::Lock::Timeout, the package lists' lock (which `apt-get update` does not wait for) by retrying.
function(_ogpsa_apt_get result)
  string(TIMESTAMP start "%s" UTC)
  math(EXPR deadline "${start} + ${OGPSA_APT_LOCK_TIMEOUT}")
  set(announced "")
  while(TRUE)
    string(TIMESTAMP now "%s" UTC)
    math(EXPR left "${deadline} - ${now}")
    if(left LESS 0)
      set(left 0)
    endif()
    execute_process(COMMAND "${CMAKE_COMMAND}" -E env DEBIAN_FRONTEND=noninteractive
                            "${OGPSA_APT_GET}" -o "DPkg::Lock::Timeout=${left}" ${ARGN}
                    RESULT_VARIABLE rc ERROR_VARIABLE errors ECHO_ERROR_VARIABLE)
    if(rc EQUAL 0 OR NOT errors MATCHES "Could not get lock ([^ ]+)\\. ([^\n]*)" OR left EQUAL 0)
      break()
    endif()
    if(NOT announced STREQUAL CMAKE_MATCH_1)
      set(announced "${CMAKE_MATCH_1}")
      message(STATUS "ogpsa: another package manager holds apt's lock ${CMAKE_MATCH_1} "
                     "(${CMAKE_MATCH_2}); waiting up to ${left} s for it (OGPSA_APT_LOCK_TIMEOUT)")
    endif()
    execute_process(COMMAND "${CMAKE_COMMAND}" -E sleep 2)
  endwhile()
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
