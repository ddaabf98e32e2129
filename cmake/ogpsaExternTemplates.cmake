# ogpsa_extern_templates(<target>): compiles the dense decompositions every projector uses once in
# <target> instead of in each of its translation units (see <ogpsa/detail/dense.hpp>). Defines
# OGPSA_EXTERN_TEMPLATES for the target's sources and adds one generated source that instantiates
# them with the target's own flags. Every translation unit of the program that includes ogpsa and
# links into the same binary must see the definition: use it on the target that holds them all,
# or define OGPSA_EXTERN_TEMPLATES in the others too.
include_guard(GLOBAL)

function(ogpsa_extern_templates target)
  target_compile_definitions(${target} PRIVATE OGPSA_EXTERN_TEMPLATES)
  set(source "${CMAKE_CURRENT_BINARY_DIR}/${target}_ogpsa_instantiate.cpp")
  file(CONFIGURE OUTPUT "${source}" CONTENT "#include <ogpsa/instantiate.hpp>\n")
  target_sources(${target} PRIVATE "${source}")
endfunction()
