// The umbrella's lists of policies, which the tests every estimator and every rule must pass run
// over, name every estimator and rule the library has: a header added under include/ogpsa/estimators/
// or include/ogpsa/rules/ but left out of its list would silently miss those tests.

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/ogpsa.hpp>

#include "policies.hpp"

namespace t = ogpsa::test;

namespace {

/// Headers kept under a policy's former name, forwarding to the renamed one.
const std::vector<std::string> former_names{"incremental_svd"};

/// The stems of the headers in include/ogpsa/<folder>/ but those of former names, sorted.
std::vector<std::string> headers_in(const std::string& folder) {
  std::vector<std::string> stems;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(OGPSA_TEST_INCLUDE_DIR) / "ogpsa" / folder))
    if (entry.path().extension() == ".hpp" &&
        std::find(former_names.begin(), former_names.end(), entry.path().stem().string()) == former_names.end())
      stems.push_back(entry.path().stem().string());
  std::sort(stems.begin(), stems.end());
  return stems;
}

/// The `name` of every policy in the tuple `List`, sorted.
template <class List>
std::vector<std::string> names_in() {
  std::vector<std::string> names;
  t::for_each_type<List>([&]<class Policy>() { names.emplace_back(Policy::name); });
  std::sort(names.begin(), names.end());
  return names;
}

/// Checks that the policies `listed` (the names in the umbrella's list `list`) are those whose
/// headers are in include/ogpsa/<folder>/: each header <name>.hpp declares the policy `<name>`,
/// whose `name` is "<name>".
void check_listed(const std::vector<std::string>& listed, const std::string& folder,
                  const std::string& list) {
  const std::vector<std::string> headers = headers_in(folder);
  for (const std::string& stem : headers)
    CHECK_MESSAGE(std::binary_search(listed.begin(), listed.end(), stem),
                  "ogpsa/" << folder << "/" << stem << ".hpp: " << stem << " is not in " << list
                           << " (include/ogpsa/ogpsa.hpp)");
  for (const std::string& name : listed)
    CHECK_MESSAGE(
        std::binary_search(headers.begin(), headers.end(), name),
        list << " names " << name << ", which has no header ogpsa/" << folder << "/" << name << ".hpp");
}

}  // namespace

TEST_CASE("ogpsa::estimators and ogpsa::rules list every estimator and rule header, by its name") {
  check_listed(names_in<ogpsa::estimators>(), "estimators", "ogpsa::estimators");
  check_listed(names_in<ogpsa::rules>(), "rules", "ogpsa::rules");
}
