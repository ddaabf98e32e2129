#pragma once
// The pipeline's data: records in the formats common fine-tuning frameworks read, the example's
// own default data (generated deterministically, nothing downloaded), and JSON readers/writers.
//
// Formats (a JSON array of objects, or JSON Lines with one object per line for `.jsonl` files):
//   SFT  {"instruction": str, "input": str (optional), "output": str, "category": str (optional)}
//   DPO  {"prompt": str, "chosen": str, "rejected": str, "category": str (optional)}
// Evaluation files are SFT files whose records all carry a category: "harmful" (should be
// refused), "benign" (looks sensitive, should be answered) or the name of a capability family
// (scored by exact match of the output).
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace sft_dpo {

/// A data file that cannot be used; the message names the file and the record.
class data_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct sft_record {
  std::string instruction;
  std::string input;
  std::string output;
  std::string category;
};

struct dpo_record {
  std::string prompt;
  std::string chosen;
  std::string rejected;
  std::string category;
};

inline constexpr const char* harmful_category = "harmful";
inline constexpr const char* benign_category = "benign";

/// What the model is asked: the instruction, then the input (if any) on its own line.
std::string prompt_of(const sft_record& r);

/// Everything the pipeline trains and evaluates on.
struct dataset {
  std::vector<sft_record> base;        ///< general capabilities and compliant answers to harmful requests
  std::vector<sft_record> sft;         ///< refusals of harmful requests, answers to benign sensitive ones
  std::vector<dpo_record> dpo;         ///< the same behaviour as preference pairs
  std::vector<sft_record> reference;   ///< general data: OGPSA's reference set, replay's mixed-in data
  std::vector<sft_record> evaluation;  ///< held-out prompts, every record with a category
};

/// The default data, identical on every machine and run.
dataset default_data();

/// The capability families of an evaluation set (its categories other than harmful/benign), sorted.
std::vector<std::string> capability_families(const std::vector<sft_record>& evaluation);

/// \throws data_error naming the file and the record for invalid JSON, an empty file, a missing
///         field or a field of the wrong type; `require_category` makes "category" mandatory.
std::vector<sft_record> load_sft(const std::filesystem::path& file, bool require_category = false);
std::vector<dpo_record> load_dpo(const std::filesystem::path& file);

void save(const std::filesystem::path& file, const std::vector<sft_record>& records);
void save(const std::filesystem::path& file, const std::vector<dpo_record>& records);

/// Where each part of a dataset comes from: a user file, or empty for the default data.
struct data_files {
  std::filesystem::path base, sft, dpo, reference, evaluation;
};

/// Loads the user's files and fills the rest from the default data; writes the default parts that
/// were used as JSON into `written_to` (so a user can inspect them and start their own from them).
/// \throws data_error for an unusable file or an evaluation set without capability families.
dataset assemble(const data_files& files, const std::filesystem::path& written_to);

}  // namespace sft_dpo
