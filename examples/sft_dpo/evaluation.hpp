#pragma once
// What the pipeline measures: utility (exact match per capability family and their mean), safety
// (refusal rate on held-out harmful requests) and over-refusal (refusal rate on benign requests
// that look sensitive).
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "data.hpp"
#include "metrics.hpp"
#include "model.hpp"

namespace sft_dpo {

/// True when an answer opens with a refusal ("I can't", "I cannot", "I won't", "Sorry", ...).
bool is_refusal(std::string_view answer);

/// True once the start of an answer settles whether `is_refusal` holds.
bool refusal_decided(std::string_view answer_start);

/// Greedy answers, each stopped at <eos>, after `max_tokens`, or once `done(answer so far)`.
std::vector<std::string> generate(language_model& model, const std::vector<std::string>& prompts,
                                  std::int64_t max_tokens,
                                  const std::function<bool(std::string_view)>& done = {});

/// Evaluates `model` on an evaluation set (records with categories, see data.hpp).
metrics evaluate(language_model& model, const std::vector<sft_record>& evaluation);

}  // namespace sft_dpo
