#pragma once
/// \file
/// Refresh schedules: when a projector's bases are re-estimated at the current weights.

#include <concepts>
#include <cstddef>

#include "ogpsa/error.hpp"

namespace ogpsa {

/// A refresh schedule: `due(steps_since_refresh)` says whether the bases should be re-estimated
/// before the next projection; `validate()` throws for bad hyper-parameters. A projector with a
/// block that has no subspace yet is always due, whatever the schedule says.
template <class Schedule>
concept refresh_schedule = std::copy_constructible<Schedule> &&
                           requires(const Schedule& s, std::size_t steps) {
                             { s.due(steps) } -> std::convertible_to<bool>;
                             s.validate();
                           };

/// Re-estimate every `n` optimizer steps. The published code uses n = 30 for SFT and 5 for DPO.
///
/// Hyper-parameters (type, default, meaning): `include/ogpsa/README.md#schedules`, the one table
/// of them, checked against this struct by the test `docs.reference_tables`.
struct every_n_steps {
  std::size_t n = 30;

  void validate() const {
    OGPSA_REQUIRE(n >= 1, invalid_argument, "ogpsa::every_n_steps::validate",
                  "n must be at least 1, got " << n);
  }
  constexpr bool due(std::size_t steps_since_refresh) const noexcept { return steps_since_refresh >= n; }
};

/// Estimate once and keep the basis for the rest of training.
struct fixed_basis {
  void validate() const noexcept {}
  constexpr bool due(std::size_t) const noexcept { return false; }
};

}  // namespace ogpsa
