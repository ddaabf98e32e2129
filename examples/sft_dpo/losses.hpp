#pragma once
// Batches of token sequences and the training objectives: next-token loss on answers (SFT), the
// sigmoid DPO loss (Rafailov et al., arXiv 2305.18290) and the sequence log-likelihoods it needs.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "data.hpp"

namespace sft_dpo {

/// One exchange: a prompt and an answer to it.
struct exchange {
  std::string prompt;
  std::string answer;
};

/// Right-padded sequences `<bos> prompt <sep> answer <eos> <pad>...` of a batch.
struct batch {
  torch::Tensor tokens;   ///< batch x time, int64
  torch::Tensor targets;  ///< the next token where the answer is predicted (answer and <eos>), -1 elsewhere
  torch::Tensor real;     ///< batch x time, bool: positions holding tokens (not padding)
};

/// Too long a sequence loses the start of its prompt first, then the end of its answer.
batch make_batch(const std::vector<exchange>& exchanges, std::int64_t context);

exchange as_exchange(const sft_record& r);

/// Mean next-token cross-entropy over the answers' tokens.
torch::Tensor answer_loss(const torch::Tensor& logits, const batch& b);

/// Per sequence: the sum of log p(answer token) over its answer, shape (batch).
torch::Tensor answer_log_likelihood(const torch::Tensor& logits, const batch& b);

/// Per sequence: the number of answer tokens, shape (batch), float.
torch::Tensor answer_lengths(const batch& b);

/// The sigmoid DPO loss, mean over pairs: -log sigmoid(beta * ((pc - rc) - (pr - rr))), for
/// policy (p) and frozen reference (r) log-likelihoods of the chosen (c) and rejected (r) answers.
torch::Tensor dpo_loss(const torch::Tensor& policy_chosen, const torch::Tensor& policy_rejected,
                       const torch::Tensor& reference_chosen, const torch::Tensor& reference_rejected,
                       double beta);

/// A batch of preference pairs: the chosen answers in rows [0, n), the rejected ones in [n, 2n).
batch make_pair_batch(const std::vector<dpo_record>& pairs, std::int64_t context);

}  // namespace sft_dpo
