// An estimator whose per-block pass does not keep the contract (here: no finish()) is refused
// where the projector meets its backend, with a sentence that says what the pass must have.
// expect: the estimator's per-block pass does not keep the estimator contract
#include <string>

#include <ogpsa/ogpsa.hpp>

template <class Backend, class Work>
struct ones_pass {
  ones_pass(const struct ones&, ogpsa::index_t dimension, std::string) : dimension(dimension) {}
  template <class S>
  void feed(typename Backend::execution&, ogpsa::detail::matrix_ref<const S, typename Backend::memory_space>,
            ogpsa::index_t) {}
#ifdef OGPSA_COMPILE_FAIL_CONTROL
  ogpsa::subspace<Work, Backend> finish(typename Backend::execution& exec) {
#else
  ogpsa::subspace<Work, Backend> estimate_all(typename Backend::execution& exec) {
#endif
    return {Backend::template zeros<Work>(exec, dimension, 0), {}, 0, 0};
  }
  ogpsa::index_t dimension;
};

struct ones {
  static constexpr const char* name = "ones";
  void validate() const {}
  bool supports(ogpsa::family) const { return true; }
  template <class Backend, class Work>
  using pass = ones_pass<Backend, Work>;
};

int main() {
  std::vector<float> g(4);
  ogpsa::projector<ones> p;
  const auto id = p.add_block("w", ogpsa::view(g));
  p.begin_reference_pass();
  p.feed(id, ogpsa::view(std::as_const(g)));
  p.finish_reference_pass();
}
