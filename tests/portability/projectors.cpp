// The whole CPU library through a second compiler: the umbrella, and a projector of every
// estimator and rule used as a trainer uses it (checked, not run; see CMakeLists.txt).
#include <utility>
#include <vector>

#include <ogpsa/ogpsa.hpp>

namespace {

template <class Estimator, class Rule>
void train(Estimator estimator, Rule rule) {
  std::vector<float> grad(64 * 32), reference(grad.size());
  ogpsa::projector<Estimator, Rule> projector(estimator, rule, ogpsa::every_n_steps{30});
  const auto fc = projector.add_block("fc.weight", ogpsa::view(grad.data(), 64, 32), ogpsa::family::flat);
  projector.begin_reference_pass();
  projector.feed(fc, ogpsa::view(std::as_const(reference).data(), 64, 32));
  projector.finish_reference_pass();
  projector.project();
}

template <class Rule>
void train_every_estimator(Rule rule) {
  train(ogpsa::mean_gradient{}, rule);
  train(ogpsa::exact_svd{.rank = 2}, rule);
  train(ogpsa::randomized_svd{.rank = 2}, rule);
  train(ogpsa::single_pass_svd{.rank = 2}, rule);
  train(ogpsa::frequent_directions{.rank = 2}, rule);
}

}  // namespace

int main() {
  train_every_estimator(ogpsa::orthogonal{});
  train_every_estimator(ogpsa::soft{.alpha = 0.5});
  train_every_estimator(ogpsa::conflict_only{});
}
