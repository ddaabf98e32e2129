# Install rules, the exported target set and the package config files, for find_package(ogpsa)
# both from an install prefix and from this build tree.
include_guard(GLOBAL)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# A header-only package is architecture independent: its CMake files go under share/.
set(OGPSA_CONFIG_DESTINATION "${CMAKE_INSTALL_DATADIR}/cmake/ogpsa")

install(TARGETS ogpsa EXPORT ogpsaTargets)
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/ogpsa" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(EXPORT ogpsaTargets NAMESPACE ogpsa:: DESTINATION "${OGPSA_CONFIG_DESTINATION}")
install(FILES "${PROJECT_SOURCE_DIR}/LICENSE" DESTINATION "${CMAKE_INSTALL_DATADIR}/doc/ogpsa")

export(EXPORT ogpsaTargets NAMESPACE ogpsa:: FILE "${PROJECT_BINARY_DIR}/ogpsaTargets.cmake")

# The CUDA backend is the package's `cuda` component: find_package(ogpsa COMPONENTS cuda).
if(TARGET ogpsa_cuda)
  install(TARGETS ogpsa_cuda EXPORT ogpsaCudaTargets)
  install(EXPORT ogpsaCudaTargets NAMESPACE ogpsa:: DESTINATION "${OGPSA_CONFIG_DESTINATION}")
  export(EXPORT ogpsaCudaTargets NAMESPACE ogpsa:: FILE "${PROJECT_BINARY_DIR}/ogpsaCudaTargets.cmake")
endif()

configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/ogpsaConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/ogpsaConfig.cmake"
  INSTALL_DESTINATION "${OGPSA_CONFIG_DESTINATION}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/ogpsaConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion
  ARCH_INDEPENDENT)
install(FILES "${PROJECT_BINARY_DIR}/ogpsaConfig.cmake" "${PROJECT_BINARY_DIR}/ogpsaConfigVersion.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/ogpsaExternTemplates.cmake"
  DESTINATION "${OGPSA_CONFIG_DESTINATION}")
# The build tree's package finds the helper where the sources keep it.
file(COPY "${PROJECT_SOURCE_DIR}/cmake/ogpsaExternTemplates.cmake" DESTINATION "${PROJECT_BINARY_DIR}")
