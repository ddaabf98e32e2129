#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "run_banner.hpp"

DOCTEST_REGISTER_LISTENER("ogpsa_run_banner", 1, ogpsa::test::run_banner);
