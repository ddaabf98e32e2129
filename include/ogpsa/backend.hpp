#pragma once
/// \file
/// Backends: who computes on a memory space. A backend is chosen at compile time from the memory
/// space of the data (`backend_for_t<host_memory_tag>` is the Eigen backend, the CUDA backend
/// specializes `backend_for<cuda_memory_tag>` in `<ogpsa/cuda.cuh>`). Estimators and rules are
/// written once on top of the primitives every backend provides:
///
/// | primitive                              | meaning                                              |
/// |----------------------------------------|------------------------------------------------------|
/// | `matrix<T>`                            | owning dense column-major matrix in the backend's memory |
/// | `zeros<T>(exec, rows, cols)`           | a zero matrix                                        |
/// | `copy_into(exec, src, dst, col)`       | dst[:, col:col+c] = src (converting element types)    |
/// | `add_into(exec, src, dst, col)`        | dst[:, col:col+c] += src                             |
/// | `all_finite(exec, src)`                | no NaN or Inf in src                                 |
/// | `gram(exec, a, b)`                     | a^T b, accumulated in double, as a host matrix       |
/// | `gram(exec, parts, b)` / `gram(exec, parts)` | [p_1 p_2 ...]^T b / the Gram matrix of [p_1 p_2 ...] (a vector of equal-height matrices seen side by side), in one pass over the rows |
/// | `gram_with_tail(exec, a, tail)`        | [a tail]^T tail for a column-major `ref` tail read where it lies (a caller's columns) |
/// | `squared_norm(exec, a)`                | |a|_F^2, accumulated in double                       |
/// | `multiply(exec, a, x)`                 | a x for a small host matrix x                         |
/// | `multiply(exec, parts, x)`             | [p_1 p_2 ...] x, in one pass over the rows            |
/// | `multiply_add(exec, a, x, out)`        | out += a x                                            |
/// | `multiply_in_place(exec, a, x)`        | a <- a x for a square host x, without a second matrix of a's size |
/// | `multiply_in_place(exec, parts, x)` / `(exec, a, tail, x)` | p_1 <- [p_1 p_2 ...] x / a <- [a tail] x in place; the other parts and the tail are only read |
/// | `row_gram(exec, a)` / `transpose`      | a a^T (double, host) / a^T                            |
/// | `gather_columns(exec, a, cols)`        | the listed columns of a, in order                    |
/// | `concatenate(exec, parts)`             | [p_1 p_2 ...] side by side                           |
/// | `householder_qr(exec, parts)`          | [p_1 p_2 ...] = Q R in place (the parts then hold Q's reflectors); returns `qr_factors<T>` with R on host |
/// | `apply_q(exec, parts, factors, x)`     | Q [x; 0] for factored parts: the basis of an estimate, without ever forming Q |
/// | `householder_basis(exec, a)`           | a <- Q of a = Q R, in place (an orthonormal basis of a tall a's range) |
/// | `transposed_r(exec, parts)`            | R of [p_1 p_2 ...]^T = Q R on host, a slab of columns at a time (for wide data) |
/// | `gaussian<T>(exec, rows, cols, seed)`  | the seed's standard normal test matrix in T, generated panel by panel (`detail/random.hpp`) |
/// | `gram_schmidt(exec, q, eps, drop)`     | modified Gram-Schmidt with re-orthogonalization       |
/// | `convert<To>(exec, m)`                 | element-type conversion                              |
/// | `to_host(exec, m)` / `from_host(exec, h)` | copies between the backend and host Eigen matrices |
/// | `project(exec, basis, target, rule, ws, stats, diag)` | one block's projection, in place   |
/// | `project_all(exec, tasks, rule, ws, diag[, flags])` | every block of a model in one call (a span of `projection_task`); `flags_report::unread` lets a device backend return without waiting for the device |
/// | `coefficients_all(exec, tasks, ws, diag)` | its first half: every task's U^T x packed into `ws.packed_coefficients<Acc>()` |
/// | `update_all(exec, tasks, rule, ws, diag)` | its second half: rule and update from the packed coefficients |
/// | `measure_all(exec, tasks, ws)` | host backends, after `update_all` with diagnostics and a sum across ranks of `ws.packed_measurements<Acc>()`: each task's measured stats from those sums |
///
/// Small dense algebra (eigen-decompositions and SVDs of k x k or m x m matrices) always runs on
/// the host in double precision through Eigen, whichever backend holds the large data.

#include <concepts>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "ogpsa/config.hpp"
#include "ogpsa/memory_space.hpp"

namespace ogpsa {

/// A small dense matrix on the host, in double: the currency between backends and estimators.
using host_matrix = Eigen::MatrixXd;
using host_vector = Eigen::VectorXd;

/// Maps a memory-space tag to the backend that serves it. Specialized by each backend header:
/// `<ogpsa/cpu/backend.hpp>` for host memory (included by `<ogpsa/projector.hpp>` and
/// `<ogpsa/ogpsa.hpp>`), `<ogpsa/cuda.cuh>` for CUDA device memory.
template <class Space>
struct backend_for {
  static_assert(!std::is_same_v<Space, host_memory_tag>,
                "no ogpsa backend serves this memory space yet: the host backend is in "
                "<ogpsa/cpu/backend.hpp>, which <ogpsa/projector.hpp> and <ogpsa/ogpsa.hpp> include");
  static_assert(!std::is_same_v<Space, cuda_memory_tag>,
                "no ogpsa backend serves this memory space: for CUDA device views include "
                "<ogpsa/cuda.cuh> and compile that file with nvcc");
  static_assert(std::is_same_v<Space, host_memory_tag> || std::is_same_v<Space, cuda_memory_tag>,
                "no ogpsa backend serves this memory space: a backend specializes "
                "ogpsa::backend_for<Space> with `using type = <the backend>;`");
};

template <class Space>
using backend_for_t = typename backend_for<Space>::type;

/// Per-call numbers a backend's `project` reports, from which `projection_info` is formed. Squared
/// norms are Frobenius norms over the whole block, g and g_after its target-space vectors before
/// and after the call. With diagnostics, the numbers about g_after are measured over the values
/// written, in the pass that writes them (never derived from |g|^2 and the coefficients, which
/// cancels catastrophically when g lies almost in the subspace); without, only the flags are set.
struct projection_stats {
  double gradient_sq = -1;     ///< |g|^2, or -1 when it was not computed
  double coefficient_sq = 0;   ///< |U^T g|^2
  double removed_sq = 0;       ///< |(1 - s) g + U r|^2, what the rule removes (r its coefficients)
  double projected_sq = 0;     ///< |g_after|^2, measured
  double remaining_coefficient_sq = 0;  ///< |U^T g_after|^2, measured
  double scale = 1;            ///< s, the factor the whole gradient was scaled by
  bool finite = true;          ///< false: the gradient held NaN/Inf and was left untouched
  bool changed = false;        ///< whether the gradient was written
};

/// Whether the caller of a many-block `project_all` reads the tasks' `finite` and `changed` flags.
/// The host backend computes them either way. A device backend asked for none (and no
/// diagnostics) does not bring them back to the host, so the call returns with the work in
/// flight instead of waiting for everything queued before it; the flags then keep their defaults.
enum class flags_report { read, unread };

/// One block of a many-block `project_all` call: the block's basis, its target-space vectors and
/// the numbers the backend reports for it. A backend may split and schedule the tasks as it likes
/// (by bytes across threads, in a constant number of kernel launches).
template <class BasisMatrix, class TargetRef>
struct projection_task {
  const BasisMatrix* basis = nullptr;
  TargetRef target{};
  projection_stats stats{};
};

/// What every backend provides (checked where a projector is instantiated).
template <class Backend>
concept backend = memory_space<typename Backend::memory_space> &&
                  std::default_initializable<typename Backend::execution> && requires {
                    typename Backend::template matrix<float>;
                    typename Backend::template matrix<double>;
                  };

}  // namespace ogpsa
