#pragma once
// LibTorch's logging (glog in Debian's build, c10's own otherwise) defines CHECK macros that would
// replace doctest's. Every torch test includes this header before anything else: the logging
// header comes first, so doctest's definitions, which follow, are the ones in force.
#include <c10/util/Logging.h>
#include <doctest/doctest.h>
