// A callback object with none of the hooks (a misspelled hook, say) is a compile error.
// expect: an ogpsa callback needs at least one of on_refresh
#include <ogpsa/ogpsa.hpp>

struct logger {
#ifdef OGPSA_COMPILE_FAIL_CONTROL
  void on_refresh(const ogpsa::refresh_info&) {}
#else
  void on_refesh(const ogpsa::refresh_info&) {}
#endif
};

int main() {
  std::vector<float> g(4);
  ogpsa::published_projector p;
  p.add_block("w", ogpsa::view(g));
  logger log;
  if (p.ready()) p.project(log);
}
