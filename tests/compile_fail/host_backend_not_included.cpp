// Code that names the host backend through <ogpsa/backend.hpp> alone is told where it is.
// expect: the host backend is in <ogpsa/cpu/backend.hpp>
#include <ogpsa/backend.hpp>
#ifdef OGPSA_COMPILE_FAIL_CONTROL
#include <ogpsa/cpu/backend.hpp>
#endif

int main() {
  ogpsa::backend_for_t<ogpsa::host_memory_tag>::execution exec{};
  (void)exec;
}
