# The dependency installer waits for apt's locks instead of failing when another package manager
# holds them (unattended upgrades at boot). Run with cmake -DWORK_DIR=<dir> -P apt_lock.cmake.
#
# 1. A stand-in apt-get that reports the package lists' lock as held while a marker file exists:
#    the installer must retry until the marker goes, and give up after its timeout.
# 2. As root with Debian's apt-get: the real dpkg frontend lock, held by another process, while
#    the installer runs a no-op install of an installed package (apt waits through its own timeout).
cmake_minimum_required(VERSION 3.25)
include("${CMAKE_CURRENT_LIST_DIR}/../../cmake/ogpsaInstallDeps.cmake")

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(marker "${WORK_DIR}/locked")

function(expect_wait timeout hold expect_rc)
  file(TOUCH "${marker}")
  if(hold GREATER_EQUAL 0)
    execute_process(COMMAND sh -c "(sleep ${hold}; rm -f '${marker}') >/dev/null 2>&1 &")
  endif()
  set(OGPSA_APT_LOCK_TIMEOUT ${timeout})
  string(TIMESTAMP start "%s" UTC)
  _ogpsa_apt_get(rc update)
  string(TIMESTAMP end "%s" UTC)
  math(EXPR waited "${end} - ${start}")
  if(expect_rc STREQUAL "0" AND NOT rc EQUAL 0)
    message(FATAL_ERROR "the installer gave up (exit code ${rc}) after ${waited} s although the lock was "
                        "released after ${hold} s, within its ${timeout} s")
  endif()
  if(NOT expect_rc STREQUAL "0" AND (rc EQUAL 0 OR waited LESS timeout))
    message(FATAL_ERROR "with the lock never released, the installer returned ${rc} after ${waited} s "
                        "(expected a failure after its ${timeout} s timeout)")
  endif()
  message(STATUS "lock held ${hold} s, timeout ${timeout} s: exit code ${rc} after ${waited} s")
endfunction()

set(fake "${WORK_DIR}/apt-get")
file(WRITE "${fake}" "#!/bin/sh
if [ -e '${marker}' ]; then
  echo \"E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (stand-in)\" >&2
  exit 100
fi
exit 0
")
file(CHMOD "${fake}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)
set(OGPSA_APT_GET "${fake}")
expect_wait(60 3 0)
expect_wait(3 -1 fail)
file(REMOVE "${marker}")

find_program(real_apt_get apt-get)
find_program(python /usr/bin/python3)
execute_process(COMMAND id -u OUTPUT_VARIABLE uid OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT real_apt_get OR NOT python OR NOT uid STREQUAL "0" OR NOT EXISTS /var/lib/dpkg/lock-frontend)
  message(STATUS "skipping the real dpkg lock: needs root, apt-get and /usr/bin/python3")
  return()
endif()
set(ready "${WORK_DIR}/holding")
execute_process(COMMAND sh -c "'${python}' -c \"
import fcntl, pathlib, time
lock = open('/var/lib/dpkg/lock-frontend', 'w')
fcntl.lockf(lock, fcntl.LOCK_EX)
pathlib.Path('${ready}').touch()
time.sleep(4)
\" >/dev/null 2>&1 &")
foreach(i RANGE 50)
  if(EXISTS "${ready}")
    break()
  endif()
  execute_process(COMMAND "${CMAKE_COMMAND}" -E sleep 0.1)
endforeach()
if(NOT EXISTS "${ready}")
  message(FATAL_ERROR "the stand-in package manager did not take the dpkg lock")
endif()
set(OGPSA_APT_GET "${real_apt_get}")
set(OGPSA_APT_LOCK_TIMEOUT 60)
string(TIMESTAMP start "%s" UTC)
_ogpsa_apt_get(rc install -y --no-install-recommends --no-upgrade cmake)
string(TIMESTAMP end "%s" UTC)
math(EXPR waited "${end} - ${start}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "apt-get failed (exit code ${rc}) while another process held the dpkg lock for 4 s")
endif()
message(STATUS "real dpkg lock held 4 s: apt-get succeeded after ${waited} s")
