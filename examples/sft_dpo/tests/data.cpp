// The data files: the default data round-trip through JSON, and every malformed file gives an
// error that names the file and the record.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "data.hpp"

namespace {

using namespace sft_dpo;

std::filesystem::path write(const std::string& name, const std::string& text) {
  const auto dir = std::filesystem::temp_directory_path() / "ogpsa_sft_dpo_tests";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary | std::ios::trunc) << text;
  return dir / name;
}

/// The message of the data_error that loading `file` throws ("" when nothing is thrown).
template <class Load>
std::string error_of(Load load, const std::filesystem::path& file) {
  try {
    load(file);
  } catch (const data_error& e) {
    return e.what();
  }
  return "";
}

std::string sft_error(const std::filesystem::path& f) { return error_of([](const auto& p) { load_sft(p); }, f); }
std::string dpo_error(const std::filesystem::path& f) { return error_of([](const auto& p) { load_dpo(p); }, f); }

}  // namespace

TEST_CASE("the default data are deterministic and survive a JSON round trip") {
  const dataset a = default_data(), b = default_data();
  REQUIRE(a.base.size() == b.base.size());
  CHECK(a.base.front().instruction == b.base.front().instruction);
  CHECK(a.dpo.back().chosen == b.dpo.back().chosen);
  CHECK(capability_families(a.evaluation) == std::vector<std::string>{"arithmetic", "facts", "format"});

  const auto sft = write("sft.json", "");
  save(sft, a.sft);
  const auto loaded = load_sft(sft);
  REQUIRE(loaded.size() == a.sft.size());
  CHECK(loaded[3].instruction == a.sft[3].instruction);
  CHECK(loaded[3].output == a.sft[3].output);
  const auto dpo = write("dpo.json", "");
  save(dpo, a.dpo);
  CHECK(load_dpo(dpo).at(5).rejected == a.dpo[5].rejected);
}

TEST_CASE("held-out evaluation prompts never appear in training data") {
  const dataset d = default_data();
  std::set<std::string> trained;
  for (const auto& r : d.sft) trained.insert(prompt_of(r));
  for (const auto& r : d.dpo) trained.insert(r.prompt);
  for (const auto& r : d.base)
    if (r.category == harmful_category || r.category == benign_category) trained.insert(prompt_of(r));
  for (const auto& r : d.evaluation)
    if (r.category == harmful_category || r.category == benign_category) CHECK_FALSE(trained.contains(prompt_of(r)));
}

TEST_CASE("user files: JSON arrays, JSON Lines, optional input and category") {
  const auto array = write("ok.json", R"([{"instruction": "Say hi.", "output": "hi"},
                                          {"instruction": "Add.", "input": "1 2", "output": "3", "category": "math"}])");
  const auto records = load_sft(array);
  REQUIRE(records.size() == 2);
  CHECK(records[0].input.empty());
  CHECK(prompt_of(records[1]) == "Add.\n1 2");
  CHECK(records[1].category == "math");
  const auto lines = write("ok.jsonl", "{\"prompt\": \"p\", \"chosen\": \"c\", \"rejected\": \"r\"}\n\n"
                                       "{\"prompt\": \"q\", \"chosen\": \"d\", \"rejected\": \"s\"}\n");
  CHECK(load_dpo(lines).at(1).chosen == "d");
}

TEST_CASE("malformed files name the file and the record") {
  SUBCASE("invalid JSON") {
    const auto f = write("broken.json", R"([{"instruction": "a", "output": "b"}, {"instruction": "c", "output": }])");
    const auto m = sft_error(f);
    CHECK(m.find(f.string()) != std::string::npos);
    CHECK(m.find("record 2: invalid JSON") != std::string::npos);
  }
  SUBCASE("invalid JSON Lines") {
    const auto f = write("broken.jsonl", "{\"prompt\": \"p\", \"chosen\": \"c\", \"rejected\": \"r\"}\n{\"prompt\": \n");
    const auto m = dpo_error(f);
    CHECK(m.find(f.string()) != std::string::npos);
    CHECK(m.find("record 2 (line 2): invalid JSON") != std::string::npos);
  }
  SUBCASE("missing field") {
    const auto f = write("missing.json", R"([{"prompt": "p", "chosen": "c", "rejected": "r"}, {"prompt": "p", "chosen": "c"}])");
    const auto m = dpo_error(f);
    CHECK(m.find(f.string()) != std::string::npos);
    CHECK(m.find("record 2: field \"rejected\" is missing") != std::string::npos);
  }
  SUBCASE("empty file") {
    const auto f = write("empty.json", "  \n");
    const auto m = sft_error(f);
    CHECK(m.find(f.string()) != std::string::npos);
    CHECK(m.find("is empty") != std::string::npos);
  }
  SUBCASE("wrong type") {
    const auto f = write("types.json", R"([{"instruction": "a", "output": "b"}, {"instruction": "a", "output": 7}])");
    const auto m = sft_error(f);
    CHECK(m.find("record 2: field \"output\" must be a string, got number 7") != std::string::npos);
  }
  SUBCASE("a record that is not an object") {
    const auto f = write("scalar.json", R"([{"instruction": "a", "output": "b"}, "text"])");
    CHECK(sft_error(f).find("record 2: expected an object, got string") != std::string::npos);
  }
  SUBCASE("not an array") {
    const auto f = write("object.json", R"({"instruction": "a", "output": "b"})");
    CHECK(sft_error(f).find("expected a JSON array of records") != std::string::npos);
  }
  SUBCASE("evaluation records need a category") {
    const auto f = write("eval.json", R"([{"instruction": "a", "output": "b", "category": "x"}, {"instruction": "a", "output": "b"}])");
    const auto m = error_of([](const auto& p) { load_sft(p, true); }, f);
    CHECK(m.find("record 2: field \"category\" is missing") != std::string::npos);
  }
  SUBCASE("a missing file") {
    CHECK(sft_error("/nonexistent/ogpsa.json").find("cannot open data file '/nonexistent/ogpsa.json'") != std::string::npos);
  }
}
