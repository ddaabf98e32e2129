#include "losses.hpp"

#include <algorithm>

#include "model.hpp"

namespace sft_dpo {

exchange as_exchange(const sft_record& r) { return {prompt_of(r), r.output}; }

namespace {

/// `<bos> prompt <sep> answer <eos>` within `context` tokens, and where the answer starts.
std::pair<std::vector<std::int64_t>, std::size_t> sequence(const exchange& e, std::int64_t context) {
  auto prompt = tokenizer::encode(e.prompt), answer = tokenizer::encode(e.answer);
  const auto limit = static_cast<std::size_t>(context);
  if (answer.size() + 4 > limit) answer.resize(limit - 4);  // keep <bos>, a prompt byte, <sep>, <eos>
  if (prompt.size() + answer.size() + 3 > limit)
    prompt.erase(prompt.begin(), prompt.end() - static_cast<std::ptrdiff_t>(limit - answer.size() - 3));
  std::vector<std::int64_t> s{tokenizer::bos};
  s.insert(s.end(), prompt.begin(), prompt.end());
  s.push_back(tokenizer::sep);
  const std::size_t answer_start = s.size();
  s.insert(s.end(), answer.begin(), answer.end());
  s.push_back(tokenizer::eos);
  return {std::move(s), answer_start};
}

}  // namespace

batch make_batch(const std::vector<exchange>& exchanges, std::int64_t context) {
  std::vector<std::pair<std::vector<std::int64_t>, std::size_t>> seqs;
  std::size_t longest = 1;
  for (const auto& e : exchanges) {
    seqs.push_back(sequence(e, context));
    longest = std::max(longest, seqs.back().first.size());
  }
  const auto rows = static_cast<std::int64_t>(seqs.size()), cols = static_cast<std::int64_t>(longest);
  auto tokens = torch::full({rows, cols}, tokenizer::pad, torch::kInt64);
  auto targets = torch::full({rows, cols}, -1, torch::kInt64);
  auto t = tokens.accessor<std::int64_t, 2>(), y = targets.accessor<std::int64_t, 2>();
  for (std::int64_t i = 0; i < rows; ++i) {
    const auto& [s, answer_start] = seqs[static_cast<std::size_t>(i)];
    for (std::size_t j = 0; j < s.size(); ++j) t[i][static_cast<std::int64_t>(j)] = s[j];
    // Position j predicts token j + 1: the answer and <eos> are predicted from answer_start - 1 on.
    for (std::size_t j = answer_start - 1; j + 1 < s.size(); ++j) y[i][static_cast<std::int64_t>(j)] = s[j + 1];
  }
  return {tokens, targets, tokens != tokenizer::pad};
}

batch make_pair_batch(const std::vector<dpo_record>& pairs, std::int64_t context) {
  std::vector<exchange> rows;
  for (const auto& p : pairs) rows.push_back({p.prompt, p.chosen});
  for (const auto& p : pairs) rows.push_back({p.prompt, p.rejected});
  return make_batch(rows, context);
}

torch::Tensor answer_loss(const torch::Tensor& logits, const batch& b) {
  return torch::nn::functional::cross_entropy(
      logits.reshape({-1, logits.size(-1)}), b.targets.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-1));
}

torch::Tensor answer_log_likelihood(const torch::Tensor& logits, const batch& b) {
  const auto answer = b.targets >= 0;
  const auto picked = logits.log_softmax(-1).gather(-1, b.targets.clamp_min(0).unsqueeze(-1)).squeeze(-1);
  return (picked * answer).sum(-1);
}

torch::Tensor answer_lengths(const batch& b) { return (b.targets >= 0).sum(-1).to(torch::kFloat); }

torch::Tensor dpo_loss(const torch::Tensor& policy_chosen, const torch::Tensor& policy_rejected,
                       const torch::Tensor& reference_chosen, const torch::Tensor& reference_rejected,
                       double beta) {
  const auto margin = (policy_chosen - reference_chosen) - (policy_rejected - reference_rejected);
  return -torch::nn::functional::logsigmoid(beta * margin).mean();
}

}  // namespace sft_dpo
