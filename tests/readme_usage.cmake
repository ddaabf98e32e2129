# Checks that a README code block is a compiled example, character for character: the block between
# the markers <!-- ${BLOCK}:begin --> and <!-- ${BLOCK}:end --> (BLOCK defaults to `usage`) must be
# the file ${SOURCE}.
if(NOT BLOCK)
  set(BLOCK usage)
endif()
file(READ "${README}" readme)
file(READ "${SOURCE}" source)
string(REGEX MATCH "<!-- ${BLOCK}:begin -->\n```cpp\n(.*)```\n<!-- ${BLOCK}:end -->" _ "${readme}")
if(NOT CMAKE_MATCH_1)
  message(FATAL_ERROR "README.md has no ${BLOCK} block between the ${BLOCK}:begin/end markers")
endif()
if(NOT CMAKE_MATCH_1 STREQUAL source)
  message(FATAL_ERROR "README.md's ${BLOCK} block differs from ${SOURCE}; copy the file into the README")
endif()
