// The objectives: batches put targets where the answer is predicted, sequence log-likelihoods
// agree with a direct sum, and the DPO loss matches a value computed by hand.
#include "doctest_after_glog.hpp"  // first: LibTorch's CHECK macros must not replace doctest's

#include <cmath>

#include "losses.hpp"
#include "model.hpp"

using namespace sft_dpo;

TEST_CASE("a batch predicts the answer and <eos> from the <sep> on, and pads after the end") {
  const batch b = make_batch({{"ab", "xy"}, {"q", "z"}}, 16);
  // <bos> a b <sep> x y <eos>  and  <bos> q <sep> z <eos> <pad> <pad>
  CHECK(b.tokens.size(1) == 7);
  const std::vector<std::int64_t> targets0{-1, -1, -1, 'x', 'y', tokenizer::eos, -1};
  const std::vector<std::int64_t> targets1{-1, -1, 'z', tokenizer::eos, -1, -1, -1};
  CHECK(std::vector<std::int64_t>(b.targets[0].data_ptr<std::int64_t>(), b.targets[0].data_ptr<std::int64_t>() + 7) == targets0);
  CHECK(std::vector<std::int64_t>(b.targets[1].data_ptr<std::int64_t>(), b.targets[1].data_ptr<std::int64_t>() + 7) == targets1);
  CHECK(b.real.sum().item<std::int64_t>() == 12);
  CHECK(answer_lengths(b)[0].item<float>() == 3.0f);
}

TEST_CASE("too long a sequence keeps its answer and the end of its prompt") {
  const batch b = make_batch({{"0123456789", "ab"}}, 8);
  // <bos> 7 8 9 <sep> a b <eos>
  CHECK(b.tokens.size(1) == 8);
  CHECK(b.tokens[0][1].item<std::int64_t>() == '7');
  CHECK(b.targets[0][4].item<std::int64_t>() == 'a');
}

TEST_CASE("answer log-likelihoods are sums of the answer tokens' log-probabilities") {
  torch::manual_seed(3);
  const batch b = make_batch({{"hi", "yo"}, {"x", "abc"}}, 16);
  const auto logits = torch::randn({2, b.tokens.size(1), tokenizer::vocabulary});
  const auto ll = answer_log_likelihood(logits, b);
  const auto logp = logits.log_softmax(-1);
  // row 0: <bos> h i <sep> y o <eos>: y, o, <eos> predicted at positions 3, 4, 5
  const double row0 = logp[0][3]['y'].item<double>() + logp[0][4]['o'].item<double>() +
                      logp[0][5][tokenizer::eos].item<double>();
  CHECK(ll[0].item<double>() == doctest::Approx(row0).epsilon(1e-6));
  CHECK(answer_loss(logits, b).item<double>() ==
        doctest::Approx(-(ll.sum() / answer_lengths(b).sum()).item<double>()).epsilon(1e-6));
}

TEST_CASE("the DPO loss matches a hand-computed value") {
  // Two pairs, beta 0.1. Pair 1: (pc - rc) - (pr - rr) = (-4 + 5) - (-6 + 5) = 2, so the loss is
  // -log sigmoid(0.2) = log(1 + e^-0.2) = 0.598139. Pair 2: (-3 + 2) - (-1 + 2) = -2: log(1 + e^0.2)
  // = 0.798139. Mean: 0.698139.
  // In double: LibTorch's C++ tensor() would make float tensors, which hold 7 digits, not 12.
  const auto f64 = torch::kFloat64;
  const auto pc = torch::tensor({-4.0, -3.0}, f64), pr = torch::tensor({-6.0, -1.0}, f64);
  const auto rc = torch::tensor({-5.0, -2.0}, f64), rr = torch::tensor({-5.0, -2.0}, f64);
  const double expected = (std::log1p(std::exp(-0.2)) + std::log1p(std::exp(0.2))) / 2;
  CHECK(expected == doctest::Approx(0.698139).epsilon(1e-6));
  CHECK(dpo_loss(pc, pr, rc, rr, 0.1).item<double>() == doctest::Approx(expected).epsilon(1e-12));
  // At the reference the margin is zero: log 2 whatever beta.
  CHECK(dpo_loss(rc, rr, rc, rr, 0.5).item<double>() == doctest::Approx(std::log(2.0)).epsilon(1e-12));
}
