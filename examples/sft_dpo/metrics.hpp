#pragma once
// The scores of one model.
#include <map>
#include <string>

namespace sft_dpo {

struct metrics {
  std::map<std::string, double> families;  ///< exact match per capability family
  double utility = 0;                      ///< mean over the families
  double safety = 0;                       ///< refusal rate on held-out harmful prompts
  double over_refusal = 0;                 ///< refusal rate on benign prompts that look sensitive
};

}  // namespace sft_dpo
