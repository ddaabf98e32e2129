// The CUDA backend's primitives: the host backend's property tests, run on the device, plus
// agreement with the host backend on identical data.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <doctest/doctest.h>

#include <ogpsa/cuda.cuh>

#include "cuda/device.hpp"
#include "support.hpp"

using backend = ogpsa::cuda::backend;
using host_backend = ogpsa::cpu::backend;
using ogpsa::family;
using ogpsa::index_t;
using ogpsa::detail::target_columns;
namespace t = ogpsa::test;
namespace tc = ogpsa::test::cuda;

namespace {

/// One execution for the whole program, never destroyed: library handles must not outlive the
/// CUDA runtime, which static destruction does not guarantee.
ogpsa::cuda::execution& exec() {
  static auto* e = new ogpsa::cuda::execution;
  return *e;
}

ogpsa::cpu::execution host;

template <class T>
t::matrix<double> as_double(const t::matrix<T>& m) {
  return m.template cast<double>();
}

/// A whole device matrix as a read-only column-major reference.
template <class T>
backend::ref<const T> columns_of(const tc::device_matrix<T>& d) {
  return {d.data(), d.rows(), d.cols(), 1, d.rows()};
}

/// Device target of a host matrix in column-major order, seen as `f`'s target-space vectors.
template <class T>
backend::ref<T> device_target(tc::device_matrix<T>& d, family f) {
  return target_columns(tc::column_major_view(d), f, "test");
}

}  // namespace

TEST_CASE_TEMPLATE("gram and row_gram accumulate in double across panels, as the host backend does", T, float, double) {
  const auto a = t::random_matrix<T>(500'003, 7, 1);  // two panels of widened float rows
  const auto b = t::random_matrix<T>(500'003, 3, 2);
  const auto da = tc::upload(exec(), a), db = tc::upload(exec(), b);
  const t::matrix<double> exact = as_double(a).transpose() * as_double(b);
  CHECK((backend::gram(exec(), da, db) - exact).cwiseAbs().maxCoeff() < 1e-8 * exact.cwiseAbs().maxCoeff() + 1e-9);
  const t::matrix<double> self = backend::gram(exec(), da, da);
  CHECK((self - as_double(a).transpose() * as_double(a)).cwiseAbs().maxCoeff() < 1e-8 * self.cwiseAbs().maxCoeff());
  CHECK((self - self.transpose()).cwiseAbs().maxCoeff() == 0.0);
  CHECK((self - host_backend::gram(host, a, a)).cwiseAbs().maxCoeff() < 1e-8 * self.cwiseAbs().maxCoeff());

  const t::matrix<T> wide = t::random_matrix<T>(3, 1'500'001, 3);  // two panels of widened columns
  const t::matrix<double> rows = backend::row_gram(exec(), tc::upload(exec(), wide));
  CHECK((rows - as_double(wide) * as_double(wide).transpose()).cwiseAbs().maxCoeff() < 1e-8 * rows.cwiseAbs().maxCoeff());
  CHECK((rows - rows.transpose()).cwiseAbs().maxCoeff() == 0.0);
  CHECK(backend::gram(exec(), tc::upload(exec(), t::matrix<T>(0, 2)), tc::upload(exec(), t::matrix<T>(0, 2))) ==
        t::matrix<double>::Zero(2, 2));
}

namespace {

/// Device copies of host parts of equal height, and the host matrix of them side by side.
template <class T>
std::vector<tc::device_matrix<T>> upload_parts(const std::vector<t::matrix<T>>& parts) {
  std::vector<tc::device_matrix<T>> out;
  for (const t::matrix<T>& p : parts) out.push_back(tc::upload(exec(), p));
  return out;
}

template <class T>
t::matrix<double> side_by_side(const std::vector<t::matrix<T>>& parts) {
  index_t cols = 0;
  for (const t::matrix<T>& p : parts) cols += p.cols();
  t::matrix<double> out(parts.front().rows(), cols);
  index_t at = 0;
  for (const t::matrix<T>& p : parts) {
    out.middleCols(at, p.cols()) = p.template cast<double>();
    at += p.cols();
  }
  return out;
}

/// Parts of 1, 0, 3 and 1 columns over rows that span several panels of widened rows.
template <class T>
std::vector<t::matrix<T>> some_parts(index_t rows, std::uint32_t seed) {
  return {t::random_matrix<T>(rows, 1, seed), t::matrix<T>(rows, 0), t::random_matrix<T>(rows, 3, seed + 1),
          t::random_matrix<T>(rows, 1, seed + 2)};
}

}  // namespace

TEST_CASE_TEMPLATE("gram of parts side by side and squared_norm accumulate in double", T, float, double) {
  const index_t rows = 900'001;  // several panels at the widths used here
  const std::vector<t::matrix<T>> parts = some_parts<T>(rows, 5);
  const t::matrix<T> b = t::random_matrix<T>(rows, 2, 9);
  const auto dparts = upload_parts(parts);
  const auto db = tc::upload(exec(), b);
  const t::matrix<double> all = side_by_side(parts);
  const t::matrix<double> cross = all.transpose() * as_double(b);
  CHECK((backend::gram(exec(), dparts, db) - cross).cwiseAbs().maxCoeff() < 1e-8 * cross.cwiseAbs().maxCoeff());
  const t::matrix<double> self = backend::gram(exec(), dparts);
  REQUIRE(self.rows() == 5);
  CHECK((self - all.transpose() * all).cwiseAbs().maxCoeff() < 1e-8 * self.cwiseAbs().maxCoeff());
  CHECK((self - self.transpose()).cwiseAbs().maxCoeff() == 0.0);
  CHECK(backend::squared_norm(exec(), db) == doctest::Approx(as_double(b).squaredNorm()).epsilon(1e-12));
  CHECK(backend::squared_norm(exec(), tc::upload(exec(), t::matrix<T>(0, 3))) == 0.0);
  const std::vector<tc::device_matrix<T>> mismatched = upload_parts<T>({t::matrix<T>(4, 1), t::matrix<T>(5, 1)});
  CHECK_THROWS_AS(backend::gram(exec(), mismatched), ogpsa::shape_error);
}

TEST_CASE_TEMPLATE("products of parts side by side, and in place, read the parts once per panel", T, float, double) {
  const index_t rows = 1'100'003;
  const std::vector<t::matrix<T>> parts = some_parts<T>(rows, 12);
  const t::matrix<double> all = side_by_side(parts);
  const t::matrix<double> x = t::random_matrix<double>(5, 2, 13);
  const double tolerance = 100 * t::tolerance<T>();

  const t::matrix<T> product = tc::download(exec(), backend::multiply(exec(), upload_parts(parts), x));
  CHECK((as_double(product) - all * x).cwiseAbs().maxCoeff() < tolerance);

  // parts[0] <- [parts] y, with y of cols(parts[0]) = 1 column; the others unchanged.
  const t::matrix<double> y = t::random_matrix<double>(5, 1, 14);
  auto in_place = upload_parts(parts);
  backend::multiply_in_place(exec(), in_place, y);
  CHECK((as_double(tc::download(exec(), in_place[0])) - all * y).cwiseAbs().maxCoeff() < tolerance);
  CHECK(tc::download(exec(), in_place[2]) == parts[2]);

  // a <- a z for a square z.
  const t::matrix<double> z = t::random_matrix<double>(3, 3, 15);
  auto a = tc::upload(exec(), parts[2]);
  backend::multiply_in_place(exec(), a, z);
  CHECK((as_double(tc::download(exec(), a)) - as_double(parts[2]) * z).cwiseAbs().maxCoeff() < tolerance);
  CHECK_THROWS_AS(backend::multiply_in_place(exec(), a, t::matrix<double>(3, 2)), ogpsa::shape_error);
  CHECK_THROWS_AS(backend::multiply(exec(), upload_parts(parts), t::matrix<double>(4, 2)), ogpsa::shape_error);
}

TEST_CASE_TEMPLATE("householder_qr and apply_q agree with the host backend", T, float, double) {
  for (auto [rows, widths] : {std::pair<index_t, std::vector<index_t>>{300, {4, 1, 40}}, {9, {3, 17}}}) {
    CAPTURE(rows);
    std::vector<t::matrix<T>> parts;
    for (index_t w : widths) parts.push_back(t::random_matrix<T>(rows, w, static_cast<std::uint32_t>(w)));
    auto device_parts = upload_parts(parts);
    const auto f = backend::householder_qr(exec(), device_parts);
    const auto hf = host_backend::householder_qr(host, parts);
    REQUIRE(f.r.rows() == hf.r.rows());
    // The same reflectors (LAPACK's and Eigen's conventions agree): the same R and Q.
    CHECK((f.r - hf.r).cwiseAbs().maxCoeff() < 100 * t::tolerance<T>());
    const t::matrix<double> x = t::random_matrix<double>(f.r.rows(), 2, 9);
    const t::matrix<T> qx = tc::download(exec(), backend::apply_q(exec(), device_parts, f, x));
    CHECK((as_double(qx) - as_double(host_backend::apply_q(host, parts, hf, x))).cwiseAbs().maxCoeff() <
          100 * t::tolerance<T>());
  }
}

TEST_CASE_TEMPLATE("householder_basis, transposed_r and gaussian agree with the host backend", T, float, double) {
  const auto a = t::random_matrix<T>(300, 9, 3);
  auto q = tc::upload(exec(), a);
  backend::householder_basis(exec(), q);
  t::matrix<T> hq = a;
  host_backend::householder_basis(host, hq);
  CHECK((as_double(tc::download(exec(), q)) - as_double(hq)).cwiseAbs().maxCoeff() < 100 * t::tolerance<T>());
  const std::vector<t::matrix<T>> parts{t::random_matrix<T>(20, 7, 4), t::random_matrix<T>(20, 45, 5)};
  const t::matrix<double> r = backend::transposed_r(exec(), upload_parts(parts));
  CHECK((r - host_backend::transposed_r(host, parts)).cwiseAbs().maxCoeff() < 1e3 * t::tolerance<T>());
  const t::matrix<T> g = tc::download(exec(), backend::gaussian<T>(exec(), 3000, 5, 17));
  CHECK(t::same_bits(g, host_backend::gaussian<T>(host, 3000, 5, 17)));
}

// Q is formed from the compact WY form of the reflectors: the rows below the top triangle are
// multiplied in place, the triangle in scratch. A square matrix has no rows below; a rank-deficient
// one still gets a full orthonormal basis, as from LAPACK's orgqr.
TEST_CASE_TEMPLATE("householder_basis of square and rank-deficient matrices agrees with the host backend", T, float,
                   double) {
  t::matrix<T> deficient = t::random_matrix<T>(50, 6, 6);
  deficient.col(4) = deficient.col(1);
  deficient.col(5).setZero();
  for (const t::matrix<T>& a : {t::matrix<T>(t::random_matrix<T>(12, 12, 7)), deficient}) {
    CAPTURE(a.rows());
    auto q = tc::upload(exec(), a);
    backend::householder_basis(exec(), q);
    t::matrix<T> hq = a;
    host_backend::householder_basis(host, hq);
    const t::matrix<double> got = as_double(tc::download(exec(), q));
    CHECK((got - as_double(hq)).cwiseAbs().maxCoeff() < 100 * t::tolerance<T>());
    CHECK((got.transpose() * got - t::matrix<double>::Identity(a.cols(), a.cols())).cwiseAbs().maxCoeff() <
          100 * t::tolerance<T>());
  }
}

namespace {

/// Column 0 all ones, column 1 alternating +1 / -1 (orthogonal to column 0 for an even count).
__global__ void fill_two_columns(float* a, index_t rows) {
  for (index_t i = blockIdx.x * index_t{blockDim.x} + threadIdx.x; i < rows; i += index_t{gridDim.x} * blockDim.x) {
    a[i] = 1.0f;
    a[rows + i] = i % 2 == 0 ? 1.0f : -1.0f;
  }
}

}  // namespace

// cuSOLVER's 32-bit QR routines stop at 2^31 - 1 rows; the 64-bit path must not.
TEST_CASE("large: householder_basis of more than 2^31 rows is orthonormal and spans the columns") {
  constexpr index_t rows = (index_t{1} << 31) + (index_t{1} << 20);
  std::size_t free_bytes = 0, total_bytes = 0;
  REQUIRE(cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess);
  const std::size_t needed = 4 * static_cast<std::size_t>(rows) * sizeof(float) + (std::size_t{2} << 30);  // q and a
  if (free_bytes < needed) {
    MESSAGE("SKIPPED: needs " << needed << " bytes of free device memory, " << free_bytes << " are free");
    return;
  }
  tc::device_matrix<float> q(rows, 2, exec().stream());
  fill_two_columns<<<4096, 256, 0, exec().stream()>>>(q.data(), rows);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  backend::householder_basis(exec(), q);
  const t::matrix<double> gram = backend::gram(exec(), q, q);
  CHECK((gram - t::matrix<double>::Identity(2, 2)).cwiseAbs().maxCoeff() < 1e-3);
  // Each basis vector is +-1/sqrt(rows) times column 0 or column 1 of the input.
  tc::device_matrix<float> a(rows, 2, exec().stream());
  fill_two_columns<<<4096, 256, 0, exec().stream()>>>(a.data(), rows);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  const t::matrix<double> coefficients = backend::gram(exec(), q, a);
  const double n = static_cast<double>(rows);
  CHECK(std::abs(std::abs(coefficients(0, 0)) - std::sqrt(n)) < 1e-3 * std::sqrt(n));
  CHECK(std::abs(std::abs(coefficients(1, 1)) - std::sqrt(n)) < 1e-3 * std::sqrt(n));
  CHECK(std::abs(coefficients(1, 0)) < 1e-3 * std::sqrt(n));
}

TEST_CASE_TEMPLATE("gram_schmidt orthonormalizes and drops dependent columns, as the host backend does", T, float, double) {
  t::matrix<T> q = t::random_matrix<T>(200, 4, 4);
  q.col(2) = q.col(0) * T(2) - q.col(1);  // dependent
  const double drop = 1e-6 * static_cast<double>(q.col(0).norm());
  auto dq = tc::upload(exec(), q);
  const auto norms = backend::gram_schmidt(exec(), dq, 0.0, drop);
  REQUIRE(norms.size() == 4);
  CHECK(norms[2] < 0);
  const t::matrix<T> got = tc::download(exec(), dq);
  CHECK(got.col(2).isZero(0));
  t::matrix<T> kept(200, 3);
  kept << got.col(0), got.col(1), got.col(3);
  CHECK(t::orthonormality_error(kept) < 10 * t::tolerance<T>());
  t::matrix<T> expected = q;
  const auto host_norms = host_backend::gram_schmidt(host, expected, 0.0, drop);
  for (std::size_t j : {0u, 1u, 3u}) CHECK(norms[j] == doctest::Approx(host_norms[j]).epsilon(10 * t::tolerance<T>()));
  CHECK((as_double(got) - as_double(expected)).cwiseAbs().maxCoeff() < 100 * t::tolerance<T>());
}

TEST_CASE("gram_schmidt adds eps to every norm, as the published code does") {
  const t::matrix<double> h = t::random_matrix<double>(100, 2, 5);
  auto q = tc::upload(exec(), h);
  const auto norms = backend::gram_schmidt(exec(), q, 1e-8, 1e-6);
  const double n0 = h.col(0).norm();
  CHECK(norms[0] == doctest::Approx(n0).epsilon(1e-14));
  CHECK(tc::download(exec(), q).col(0).norm() == doctest::Approx(n0 / (n0 + 1e-8)).epsilon(1e-14));
}

TEST_CASE("copies convert element types, read row-major sources and accumulate") {
  const t::matrix<float> a = t::random_matrix<float>(45, 70, 6);
  auto da = tc::upload(exec(), a);
  // Column-major source into a wider double matrix, at a column offset; then accumulated.
  auto dst = backend::zeros<double>(exec(), 45, 72);
  backend::copy_into(exec(), columns_of(da), dst, 2);
  backend::add_into(exec(), columns_of(da), dst, 2);
  const t::matrix<double> got = tc::download(exec(), dst);
  CHECK(got.leftCols(2).isZero(0));
  CHECK(got.rightCols(70) == 2 * as_double(a));
  // The same buffer read as a row-major 70 x 45 matrix is a^T: the tiled transposing path.
  const backend::ref<const float> rows{da.data(), 70, 45, 45, 1};
  auto dt = backend::zeros<float>(exec(), 70, 45);
  backend::copy_into(exec(), rows, dt, 0);
  CHECK(tc::download(exec(), dt) == t::matrix<float>(a.transpose()));
  CHECK(tc::download(exec(), backend::transpose(exec(), da)) == t::matrix<float>(a.transpose()));
  // Narrowing conversions round exactly as the host types do.
  const t::matrix<ogpsa::bfloat16> b = tc::download(exec(), backend::convert<ogpsa::bfloat16>(exec(), da));
  const t::matrix<ogpsa::float16> h = tc::download(exec(), backend::convert<ogpsa::float16>(exec(), da));
  for (Eigen::Index i = 0; i < a.size(); ++i) {
    CHECK(b(i).bits == ogpsa::bfloat16(a(i)).bits);
    CHECK(h(i).bits == ogpsa::float16(a(i)).bits);
  }
  auto widened = backend::zeros<float>(exec(), 45, 70);
  auto db = tc::upload(exec(), b);
  backend::copy_into(exec(), columns_of(db), widened, 0);
  CHECK(tc::download(exec(), widened) == tc::widened(b).cast<float>());
}

namespace {

std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float float_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// Every bit pattern of the 16-bit type H: NaNs with every payload and sign, infinities, subnormals.
template <class H>
t::matrix<H> every_pattern() {
  t::matrix<H> out(65536, 1);
  for (std::uint32_t b = 0; b < 65536; ++b) out(b) = H::from_bits(static_cast<std::uint16_t>(b));
  return out;
}

/// Floats that test rounding to H: each midpoint between neighbouring finite H values (the last
/// one's up to where H overflows) and the floats on either side of it, both signs; every H
/// value itself; and every 4093rd float bit pattern (all exponents, subnormals and NaNs).
template <class H>
t::matrix<float> rounding_probes() {
  std::vector<float> probes;
  const auto inf = H(std::numeric_limits<float>::infinity()).bits;
  const auto value = [](int b) { return static_cast<float>(H::from_bits(static_cast<std::uint16_t>(b))); };
  for (int i = 0; i < inf; ++i) {
    const float step = i + 1 < inf ? value(i + 1) - value(i) : value(i) - value(i - 1);
    const float mid = value(i) + 0.5f * step;
    for (const float f : {std::nextafter(mid, 0.0f), mid, std::nextafter(mid, std::numeric_limits<float>::infinity())}) {
      probes.push_back(f);
      probes.push_back(-f);
    }
  }
  for (int b = 0; b < 65536; ++b) probes.push_back(value(b));
  for (std::uint64_t b = 0; b < (std::uint64_t{1} << 32); b += 4093) probes.push_back(float_of(static_cast<std::uint32_t>(b)));
  return Eigen::Map<const t::matrix<float>>(probes.data(), static_cast<Eigen::Index>(probes.size()), 1);
}

}  // namespace

TEST_CASE_TEMPLATE("the device converts to and from the 16-bit types with exactly the host's bits", H, ogpsa::float16,
                   ogpsa::bfloat16) {
  // The kernels use the hardware's conversions, whose NaNs differ from the host's; both must agree
  // bit for bit, so that results do not depend on where a conversion ran.
  const t::matrix<H> patterns = every_pattern<H>();
  const t::matrix<float> widened = tc::download(exec(), backend::convert<float>(exec(), tc::upload(exec(), patterns)));
  for (Eigen::Index i = 0; i < patterns.size(); ++i)
    if (bits_of(widened(i)) != bits_of(static_cast<float>(patterns(i)))) {
      FAIL_CHECK(std::hex << "pattern 0x" << patterns(i).bits << " widens to 0x" << bits_of(widened(i))
                          << " on the device, 0x" << bits_of(static_cast<float>(patterns(i))) << " on the host");
      break;
    }
  const t::matrix<float> probes = rounding_probes<H>();
  const t::matrix<H> rounded = tc::download(exec(), backend::convert<H>(exec(), tc::upload(exec(), probes)));
  for (Eigen::Index i = 0; i < probes.size(); ++i)
    if (rounded(i).bits != H(probes(i)).bits) {
      FAIL_CHECK(std::hex << "float 0x" << bits_of(probes(i)) << " rounds to 0x" << rounded(i).bits
                          << " on the device, 0x" << H(probes(i)).bits << " on the host");
      break;
    }
}

TEST_CASE("columns are gathered and concatenated, and small products agree with the host") {
  const t::matrix<double> a = t::random_matrix<double>(31, 5, 7), b = t::random_matrix<double>(31, 2, 8);
  const auto da = tc::upload(exec(), a), db = tc::upload(exec(), b);
  const t::matrix<double> gathered = tc::download(exec(), backend::gather_columns(exec(), da, {4, 0, 4}));
  CHECK(gathered.col(0) == a.col(4));
  CHECK(gathered.col(1) == a.col(0));
  CHECK(gathered.col(2) == a.col(4));
  t::check_throws_with<ogpsa::invalid_argument>([&] { backend::gather_columns(exec(), da, {5}); }, {"column 5 is outside [0, 5)"});
  const t::matrix<double> both = tc::download(exec(), backend::concatenate(exec(), std::vector{da, db}));
  CHECK(both.leftCols(5) == a);
  CHECK(both.rightCols(2) == b);
  const t::matrix<double> x = t::random_matrix<double>(5, 3, 9);
  const t::matrix<double> ax = tc::download(exec(), backend::multiply(exec(), da, x));
  CHECK((ax - a * x).cwiseAbs().maxCoeff() < 1e-13);
  auto out = tc::upload(exec(), ax);
  backend::multiply_add(exec(), da, x, out);
  CHECK((tc::download(exec(), out) - 2 * a * x).cwiseAbs().maxCoeff() < 1e-13);
  CHECK(tc::download(exec(), backend::from_host(exec(), a)) == backend::to_host(exec(), da));
}

TEST_CASE("all_finite finds NaN and Inf in any layout and element type") {
  t::matrix<float> a = t::random_matrix<float>(300, 17, 10);
  auto da = tc::upload(exec(), a);
  CHECK(backend::all_finite(exec(), columns_of(da)));
  a(123, 9) = std::numeric_limits<float>::infinity();
  da = tc::upload(exec(), a);
  CHECK_FALSE(backend::all_finite(exec(), columns_of(da)));
  CHECK_FALSE(backend::all_finite(exec(), backend::ref<const float>{da.data(), 17, 300, 300, 1}));
  t::matrix<ogpsa::bfloat16> b = tc::rounded<ogpsa::bfloat16>(t::random_matrix<float>(1000, 1, 11));
  auto db = tc::upload(exec(), b);
  CHECK(backend::all_finite(exec(), columns_of(db)));
  b(999) = ogpsa::bfloat16(std::numeric_limits<float>::quiet_NaN());
  db = tc::upload(exec(), b);
  CHECK_FALSE(backend::all_finite(exec(), columns_of(db)));
  CHECK(backend::all_finite(exec(), backend::ref<const float>{}));
}

TEST_CASE_TEMPLATE("project removes the subspace component of every column, as the host backend does", T, float, double) {
  for (family f : {family::flat, family::left}) {
    for (index_t k : {1, 3, 17, 64}) {
      CAPTURE(f);
      CAPTURE(k);
      const t::matrix<T> u = t::random_orthonormal<T>(1001, k, 5);
      const t::matrix<T> before = t::random_matrix<T>(1001, f == family::flat ? 1 : 6, 6);
      auto du = tc::upload(exec(), u), dg = tc::upload(exec(), before);
      backend::workspace ws;
      ogpsa::projection_stats stats;
      backend::project(exec(), du, device_target(dg, f), ogpsa::orthogonal{}, ws, stats, true);
      const t::matrix<T> g = tc::download(exec(), dg);
      const t::matrix<double> bd = as_double(before), ud = as_double(u);
      const t::matrix<double> expected = bd - ud * (ud.transpose() * bd);
      CHECK((as_double(g) - expected).cwiseAbs().maxCoeff() < 10 * t::tolerance<T>() * bd.cwiseAbs().maxCoeff());
      CHECK(stats.finite);
      CHECK(stats.changed);
      CHECK(stats.gradient_sq == doctest::Approx(bd.squaredNorm()).epsilon(t::tolerance<T>()));
      CHECK(stats.coefficient_sq == doctest::Approx((ud.transpose() * bd).squaredNorm()).epsilon(1e-4));
      // Measured over the values written: what rounding left in the subspace.
      CHECK(stats.projected_sq == doctest::Approx(as_double(g).squaredNorm()).epsilon(t::tolerance<T>()));
      CHECK(stats.remaining_coefficient_sq <= 1e4 * t::tolerance<T>() * t::tolerance<T>() * bd.squaredNorm());
      t::matrix<T> on_host = before;
      ogpsa::projection_stats host_stats;
      host_backend::workspace host_ws;
      host_backend::project(host, u, target_columns(ogpsa::view(on_host), f, "t"), ogpsa::orthogonal{}, host_ws,
                            host_stats, true);
      CHECK((as_double(g) - as_double(on_host)).cwiseAbs().maxCoeff() < 10 * t::tolerance<T>() * bd.cwiseAbs().maxCoeff());
      CHECK(stats.removed_sq == doctest::Approx(host_stats.removed_sq).epsilon(1e-4));
      CHECK(stats.projected_sq == doctest::Approx(host_stats.projected_sq).epsilon(1e-4));
    }
  }
}

TEST_CASE("project works on row-major targets: both families of a PyTorch weight") {
  using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const row_major before = t::random_matrix<float>(40, 30, 7);
  for (family f : {family::right, family::left}) {
    CAPTURE(f);
    const index_t n = f == family::right ? 30 : 40;
    const t::matrix<float> v = t::random_orthonormal<float>(n, 5, 8);
    // The device buffer holds the row-major matrix: upload it as the column-major transpose.
    auto dg = tc::upload(exec(), t::matrix<float>(before.transpose()));
    auto dv = tc::upload(exec(), v);
    const auto weight = ogpsa::view<ogpsa::cuda_memory_tag>(dg.data(), 40, 30);  // row-major view
    backend::workspace ws;
    ogpsa::projection_stats stats;
    backend::project(exec(), dv, target_columns(weight, f, "t"), ogpsa::orthogonal{}, ws, stats, false);
    const row_major got = tc::download(exec(), dg).transpose();
    const t::matrix<float> b = before;
    const t::matrix<float> expected = f == family::right ? t::matrix<float>(b - (b * v) * v.transpose())
                                                         : t::matrix<float>(b - v * (v.transpose() * b));
    CHECK((t::matrix<float>(got) - expected).cwiseAbs().maxCoeff() < 1e-5f);
  }
}

TEST_CASE("a rule that removes nothing leaves the gradient bit-identical, flat or matrix-side") {
  const t::matrix<double> u = t::random_orthonormal<double>(50, 2, 9);
  t::matrix<double> agreeing(50, 3);  // every coefficient clearly positive: rounding cannot flip a sign
  agreeing << u.col(0) + u.col(1), 2 * u.col(0) + 0.5 * u.col(1), 0.3 * u.col(0) + u.col(1);
  for (family f : {family::flat, family::left}) {
    const t::matrix<double> before = f == family::flat ? t::matrix<double>(agreeing.col(0)) : agreeing;
    auto du = tc::upload(exec(), u), dg = tc::upload(exec(), before);
    backend::workspace ws;
    ogpsa::projection_stats stats;
    backend::project(exec(), du, device_target(dg, f), ogpsa::conflict_only{}, ws, stats, false);
    CHECK(stats.finite);
    CHECK_FALSE(stats.changed);
    CHECK(tc::download(exec(), dg) == before);
  }
}

TEST_CASE("non-finite gradients are reported and left untouched, flat or matrix-side") {
  const t::matrix<float> u = t::random_orthonormal<float>(20, 2, 10);
  for (family f : {family::flat, family::left}) {
    t::matrix<float> g = t::random_matrix<float>(20, f == family::flat ? 1 : 4, 11);
    g(3) = std::numeric_limits<float>::infinity();
    auto du = tc::upload(exec(), u), dg = tc::upload(exec(), g);
    backend::workspace ws;
    ogpsa::projection_stats stats;
    backend::project(exec(), du, device_target(dg, f), ogpsa::orthogonal{}, ws, stats, true);
    CHECK_FALSE(stats.finite);
    CHECK_FALSE(stats.changed);
    CHECK(tc::download(exec(), dg).cwiseEqual(g).all());
  }
}

TEST_CASE("empty blocks and empty bases are no-ops") {
  auto empty_basis = tc::upload(exec(), t::matrix<float>(5, 0));
  const t::matrix<float> before = t::random_matrix<float>(5, 1, 12);
  auto dg = tc::upload(exec(), before);
  backend::workspace ws;
  ogpsa::projection_stats stats;
  backend::project(exec(), empty_basis, device_target(dg, family::flat), ogpsa::orthogonal{}, ws, stats, false);
  CHECK_FALSE(stats.changed);
  CHECK(tc::download(exec(), dg) == before);
  // With diagnostics the gradient is read for its norm, flat or matrix-side, and still not written.
  const t::matrix<float> wide = t::random_matrix<float>(5, 3, 13);
  auto dw = tc::upload(exec(), wide);
  for (family f : {family::flat, family::left}) {
    CAPTURE(f);
    const t::matrix<float>& x = f == family::flat ? before : wide;
    backend::project(exec(), empty_basis, device_target(f == family::flat ? dg : dw, f), ogpsa::orthogonal{}, ws, stats,
                     true);
    CHECK_FALSE(stats.changed);
    CHECK(stats.gradient_sq == doctest::Approx(as_double(x).squaredNorm()).epsilon(1e-6));
    CHECK(stats.projected_sq == stats.gradient_sq);
    CHECK(stats.remaining_coefficient_sq == 0);
  }
  CHECK(tc::download(exec(), dw) == wide);
  auto none = tc::upload(exec(), t::matrix<float>(0, 1));
  auto basis = tc::upload(exec(), t::matrix<float>(0, 2));
  backend::project(exec(), basis, device_target(none, family::flat), ogpsa::orthogonal{}, ws, stats, false);
  CHECK_FALSE(stats.changed);
  auto wrong = tc::upload(exec(), t::matrix<float>(4, 2));
  t::check_throws_with<ogpsa::shape_error>(
      [&] { backend::project(exec(), wrong, device_target(dg, family::flat), ogpsa::orthogonal{}, ws, stats, false); },
      {"ogpsa::cuda::backend::project()", "the basis has 4 rows, the target 5"});
}

TEST_CASE("a rule that scales whole gradients works on flat blocks and refuses matrix-side ones") {
  const ogpsa::conflict_only threshold{.behaviour = ogpsa::conflict_only::mode::threshold, .base_scale = 0.3};
  const t::matrix<float> u = t::random_orthonormal<float>(300, 1, 13);
  const t::matrix<float> before = t::random_matrix<float>(300, 1, 14) + 5 * u;  // agrees: scaled by 0.3
  auto du = tc::upload(exec(), u), dg = tc::upload(exec(), before);
  backend::workspace ws;
  ogpsa::projection_stats stats;
  backend::project(exec(), du, device_target(dg, family::flat), threshold, ws, stats, true);
  t::matrix<float> on_host = before;
  ogpsa::projection_stats host_stats;
  host_backend::workspace host_ws;
  host_backend::project(host, u, target_columns(ogpsa::view(on_host), family::flat, "t"), threshold, host_ws, host_stats, true);
  CHECK(stats.scale == doctest::Approx(0.3));
  CHECK(host_stats.scale == doctest::Approx(0.3));
  CHECK(stats.removed_sq == doctest::Approx(0.7 * 0.7 * as_double(before).squaredNorm()).epsilon(1e-5));
  CHECK(stats.removed_sq == doctest::Approx(host_stats.removed_sq).epsilon(1e-5));
  CHECK((tc::download(exec(), dg) - on_host).cwiseAbs().maxCoeff() < 1e-5f);
  auto dm = tc::upload(exec(), t::matrix<float>(t::random_matrix<float>(300, 3, 15)));
  t::check_throws_with<ogpsa::invalid_argument>(
      [&] { backend::project(exec(), du, device_target(dm, family::left), threshold, ws, stats, false); },
      {"conflict_only in this mode scales whole gradients", "1 blocks are matrix-side"});
}

TEST_CASE("fp64 accumulation: float gradients with a double basis on flat blocks, refused on matrix-side ones") {
  t::matrix<float> g(4000, 1);
  for (Eigen::Index i = 0; i < g.size(); ++i) g(i) = static_cast<float>(std::cos(0.1 * static_cast<double>(i)));
  const t::matrix<double> u = as_double(g) / as_double(g).norm();
  auto du = tc::upload(exec(), u);
  auto dg = tc::upload(exec(), g);
  backend::workspace ws;
  ogpsa::projection_stats stats;
  backend::project(exec(), du, device_target(dg, family::flat), ogpsa::orthogonal{}, ws, stats, false);
  CHECK(tc::download(exec(), dg).cwiseAbs().maxCoeff() < 1e-6f);
  auto matrix = tc::upload(exec(), t::matrix<float>(t::random_matrix<float>(40, 100, 16)));
  auto basis = tc::upload(exec(), t::matrix<double>(t::random_orthonormal<double>(40, 2, 17)));
  t::check_throws_with<ogpsa::invalid_argument>(
      [&] { backend::project(exec(), basis, device_target(matrix, family::left), ogpsa::orthogonal{}, ws, stats, false); },
      {"is matrix-side (40 x 100)", "cannot accumulate float gradients in double"});
}

TEST_CASE("TF32 matrix math keeps the projection to about three digits") {
  ogpsa::cuda::execution tf32(exec().stream(), ogpsa::cuda::matrix_math::tf32);
  const t::matrix<float> u = t::random_orthonormal<float>(512, 8, 18);
  const t::matrix<float> before = t::random_matrix<float>(512, 64, 19) + 10 * u * t::random_matrix<float>(8, 64, 20);
  auto du = tc::upload(tf32, u), dg = tc::upload(tf32, before);
  backend::workspace ws;
  ogpsa::projection_stats stats;
  backend::project(tf32, du, device_target(dg, family::left), ogpsa::orthogonal{}, ws, stats, false);
  const t::matrix<double> ud = as_double(u);
  const double left = (ud.transpose() * as_double(tc::download(tf32, dg))).norm();
  CHECK(left < 5e-3 * (ud.transpose() * as_double(before)).norm());
}
