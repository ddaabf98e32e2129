#pragma once
/// \file
/// Library version, as macros (for the preprocessor) and as a constant.

#define OGPSA_VERSION_MAJOR 0
#define OGPSA_VERSION_MINOR 1
#define OGPSA_VERSION_PATCH 0

/// One integer that orders releases: major * 10000 + minor * 100 + patch.
#define OGPSA_VERSION (OGPSA_VERSION_MAJOR * 10000 + OGPSA_VERSION_MINOR * 100 + OGPSA_VERSION_PATCH)

namespace ogpsa {
inline constexpr int version = OGPSA_VERSION;
}  // namespace ogpsa
