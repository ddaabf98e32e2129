// The spectral helpers every SVD estimator ends with, on the inputs that overflowing or
// degenerate data produce.
#include <limits>
#include <optional>

#include <doctest/doctest.h>

#include <ogpsa/cpu/backend.hpp>
#include <ogpsa/detail/spectral.hpp>

#include "support.hpp"

namespace t = ogpsa::test;
using ogpsa::host_matrix;
using ogpsa::host_vector;

// A single-pass sketch of data whose squares overflow leaves no usable direction: the Gram
// matrix of what is left has no rows, and Eigen's eigen-solver must not be asked about it.
TEST_CASE("the spectrum of an empty Gram matrix is empty") {
  const ogpsa::detail::spectrum s = ogpsa::detail::gram_spectrum(host_matrix(0, 0));
  CHECK(s.values.size() == 0);
  CHECK(s.vectors.rows() == 0);
  CHECK(s.vectors.cols() == 0);
}

// The data's energy is the denominator of every captured fraction and the target of energy
// selection: Inf (finite data whose squares overflow) would select nothing, silently.
TEST_CASE("rank selection refuses data whose squared norm is not finite") {
  const host_vector sigma = (host_vector(3) << 3.0, 2.0, 1.0).finished();
  ogpsa::subspace<double, ogpsa::cpu::backend> out;
  for (const double total : {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
    CAPTURE(total);
    t::check_throws_with<ogpsa::numeric_error>(
        [&] { ogpsa::detail::select_rank(sigma, total, std::optional<ogpsa::index_t>{2}, std::nullopt, 3, 1e-12, out); },
        {"ogpsa::detail::select_rank(): the data's squared norm is", "overflow"});
  }
  const host_vector nan_sigma = (host_vector(2) << 1.0, std::numeric_limits<double>::quiet_NaN()).finished();
  t::check_throws_with<ogpsa::numeric_error>(
      [&] { ogpsa::detail::select_rank(nan_sigma, 2.0, std::optional<ogpsa::index_t>{2}, std::nullopt, 2, 1e-12, out); },
      {"ogpsa::detail::select_rank(): singular value 1 is nan"});
  CHECK(ogpsa::detail::select_rank(sigma, 14.0, std::optional<ogpsa::index_t>{2}, std::nullopt, 3, 1e-12, out) == 2);
  CHECK(out.captured_energy == doctest::Approx(13.0 / 14.0));
}
