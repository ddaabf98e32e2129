#pragma once
// What every test program prints before its first test: the versions of the library and of what it
// was built with, and the seeds its results depend on, so that a failure reported from another
// machine can be reproduced. A doctest listener: it speaks at the start of a run only, never for
// queries such as --list-test-cases, whose output ctest parses to discover the tests.

#include <ostream>
#include <string>
#include <thread>

#include <Eigen/Core>
#include <doctest/doctest.h>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include <ogpsa/version.hpp>

namespace ogpsa::test {

class run_banner : public doctest::IReporter {
 public:
  explicit run_banner(const doctest::ContextOptions& options) : options_(options) {}

  void test_run_start() override {
    std::ostream& out = *options_.cout;
    out << "[ogpsa] ogpsa " << OGPSA_VERSION_MAJOR << '.' << OGPSA_VERSION_MINOR << '.' << OGPSA_VERSION_PATCH
        << ", Eigen " << EIGEN_WORLD_VERSION << '.' << EIGEN_MAJOR_VERSION << '.' << EIGEN_MINOR_VERSION
        << ", doctest " << DOCTEST_VERSION_STR << ", " << compiler() << ", C++ " << __cplusplus << ", "
        << threads() << '\n'
        << "[ogpsa] seeds: random data from fixed seeds written in each test (ogpsa::test::random_matrix); "
        << "test order '" << options_.order_by.c_str() << "', order seed " << options_.rand_seed << '\n';
  }

  void report_query(const doctest::QueryData&) override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}

 private:
  static const char* compiler() {
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "g++ " __VERSION__;
#else
    return "an unknown compiler";
#endif
  }

  static std::string threads() {
    std::string s = std::to_string(std::thread::hardware_concurrency()) + " hardware threads, ";
#if defined(_OPENMP)
    return s + "OpenMP " + std::to_string(_OPENMP) + " (" + std::to_string(omp_get_max_threads()) + " threads)";
#else
    return s + "no OpenMP";
#endif
  }

  const doctest::ContextOptions& options_;
};

}  // namespace ogpsa::test
