#pragma once
/// \file
/// Include in exactly one source file of a program whose translation units define
/// `OGPSA_EXTERN_TEMPLATES`: it instantiates there what they only declare (see
/// `ogpsa/detail/dense.hpp`), compiled with that file's flags. Any other ogpsa header may be
/// included before or after it. (A translation unit without the definition instantiates what it
/// uses itself, as always: nothing breaks, it only compiles slower.) CMake users call
/// `ogpsa_extern_templates(<target>)` instead, which does both.
///
///     // ogpsa_instances.cpp, in a target compiled with -DOGPSA_EXTERN_TEMPLATES
///     #include <ogpsa/instantiate.hpp>

#include "ogpsa/cpu/detail/householder.hpp"
#include "ogpsa/detail/dense.hpp"

OGPSA_DETAIL_DENSE_INSTANTIATIONS(template)
OGPSA_DETAIL_HOUSEHOLDER_INSTANTIATIONS(template)
