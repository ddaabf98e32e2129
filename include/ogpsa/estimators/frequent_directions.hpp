#pragma once
/// \file
/// Streaming top-k left singular vectors in bounded memory (Frequent Directions), mergeable across
/// workers.

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "ogpsa/backend.hpp"
#include "ogpsa/detail/matrix_ref.hpp"
#include "ogpsa/detail/orthonormalize.hpp"
#include "ogpsa/detail/rounds.hpp"
#include "ogpsa/detail/spectral.hpp"
#include "ogpsa/error.hpp"
#include "ogpsa/estimator.hpp"
#include "ogpsa/family.hpp"
#include "ogpsa/subspace.hpp"

namespace ogpsa {

template <class Backend, class Work>
class frequent_directions_pass;

/// A `frequent_directions` pass's sketch in host memory: what it knows about the columns it has seen, in a
/// form that can be sent to another worker and merged there (`export_sketch` / `merge`).
template <class Work>
struct frequent_directions_sketch {
  /// d x r sketch B: 0 <= A A^T - B B^T <= shrinkage * I for the columns A summarized.
  Eigen::Matrix<Work, Eigen::Dynamic, Eigen::Dynamic> columns;
  /// d x 1: the sum of the columns summarized (orients the final directions).
  Eigen::Matrix<Work, Eigen::Dynamic, Eigen::Dynamic> column_sum;
  double energy = 0;     ///< |A|_F^2
  double shrinkage = 0;  ///< Delta, the sum of the shrinkage steps
  index_t count = 0;     ///< number of columns summarized
  index_t width = 0;     ///< sketch width l of the estimator that made it
};

/// Frequent Directions (Liberty, KDD 2013; Ghashami, Liberty, Phillips and Woodruff, SIAM J.
/// Comput. 45(5), 2016) over the stream of reference columns A = [a_1 ... a_m] (d x m). A pass
/// keeps a sketch B (d x l, orthogonal columns) and a buffer C of b incoming columns; no snapshot is
/// kept. Each time the buffer fills, the eigen-decomposition of the Gram matrix of [B C]
/// (accumulated in double) gives its directions and squared singular values lambda_1 >= ..., and
/// B becomes the top l of them, every squared value shrunk by delta = lambda_{l+1}:
///
///     B <- [B C] V_l diag(sqrt(1 - delta / lambda_i))        (in place on the backend)
///
/// `finish` returns the top k directions of [B C] (no last shrink). Guarantee, deterministic, for
/// every stream and every k' <= l, with Delta the sum of the deltas (`shrinkage` when exported):
///
///     0 <= A A^T - B B^T <= Delta I,        Delta <= |A - A_k'|_F^2 / (l + 1 - k'),
///
/// so (Davis-Kahan) the largest principal-angle sine to the exact top-k directions is at most
/// Delta / (s_k^2 - s_{k+1}^2). Merged sketches of disjoint shards keep both statements for the
/// union (their Deltas add up), so merging A's and B's sketches and feeding A then B agree within
/// them. Strengths are the sketch's singular values (each at most the exact one); `captured_energy`
/// is a lower bound of the basis's true captured energy, so an energy threshold errs towards a
/// larger rank. Directions point along the data (sum_j u_i^T a_j >= 0); those with s_i <= min(d, m)
/// max(eps, 2^-26) s_1 are numerically zero (the sketch's spectrum comes from a Gram matrix).
///
/// Memory d (l + 1) in the working type whatever the number of snapshots (the sketch and the data's
/// column sum), plus d b for the buffer only when it is needed: whole blocks of b columns fed in
/// the working type (b = 1: one flat gradient per `feed`) are read where they lie, never copied.
/// Peak memory of a pass (w bytes per working-type value; measured in tests/estimators/memory.cpp):
/// w d (l + 1 + max(b', k)), with b' = b when the buffer is used and 0 otherwise: the buffer is
/// released before the basis (the sketch's first k < l columns, d x k) is gathered beside it.
/// O(d (l + b)^2 / b) products per column, and per update two reads of B and C and one write of B.
/// The result depends on where the blocks end, not on how the columns were split into `feed` calls.
///
/// Rank per block as `exact_svd` (`detail::choose_rank`): a fixed rank beyond min(d, m) keeps what
/// the block has and reports the shortfall as dropped. An energy threshold still needs `rank`: it
/// caps the choice and sets the default sketch width 2 rank, fixed before the first snapshot.
///
/// Hyper-parameters (type, default, meaning): `include/ogpsa/README.md#frequent_directions`, the one table
/// of them, checked against this struct by the test `docs.reference_tables`.
struct frequent_directions {
  static constexpr const char* name = "frequent_directions";

  index_t rank = 8;
  std::optional<double> energy{};
  std::optional<index_t> sketch_width{};
  std::optional<index_t> block{};

  index_t width() const noexcept { return sketch_width.value_or(2 * rank); }
  index_t block_columns() const noexcept { return block.value_or(rank); }

  /// \throws invalid_argument for rank < 1, an energy threshold outside (0, 1], a sketch width
  ///         below the rank or a block below 1.
  void validate() const {
    constexpr const char* where = "ogpsa::frequent_directions::validate";
    detail::validate_rank_selection(rank, energy, where);
    OGPSA_REQUIRE(width() >= rank, invalid_argument, where,
                  "sketch_width l must be >= rank k = " << rank << ", got " << width());
    OGPSA_REQUIRE(block_columns() >= 1, invalid_argument, where,
                  "block b must be >= 1, got " << block_columns());
  }

  constexpr bool supports(family) const noexcept { return true; }

  /// Sketches of disjoint columns merge, but a sketch cannot be cut by rows (Frequent
  /// Directions' shrink needs whole target vectors): blocks whose target rows are split across
  /// ranks (`ogpsa/sharding.hpp`) are refused.
  static constexpr bool splits_target_rows = false;

  template <class Backend, class Work>
  using pass = frequent_directions_pass<Backend, Work>;
};

/// The work of `frequent_directions` on one block during one reference pass (or one worker's shard of it).
template <class Backend, class Work>
class frequent_directions_pass {
 public:
  using execution = typename Backend::execution;
  using matrix = typename Backend::template matrix<Work>;
  using sketch_type = frequent_directions_sketch<Work>;
  template <class S>
  using column_ref = detail::matrix_ref<const S, typename Backend::memory_space>;

  frequent_directions_pass(const frequent_directions& params, index_t dimension, std::string block)
      : params_(params), dimension_(dimension), block_(std::move(block)) {}

  /// Whole blocks of b columns in the working type and column-major are absorbed where they lie;
  /// only the columns of an unfinished block (or of another element type) are copied into the
  /// buffer, which is allocated when first needed.
  template <class S>
  void feed(execution& exec, column_ref<S> columns, index_t /*set*/) {
    allocate(exec);
    const index_t b = params_.block_columns();
    for (index_t at = 0; at < columns.cols;) {
      const index_t n = std::min(b - filled_, columns.cols - at);
      if constexpr (std::is_same_v<S, Work>) {
        if (filled_ == 0 && n == b && columns.column_major()) {
          absorb(exec, columns.middle_cols(at, n));
          at += n;
          continue;
        }
      }
      Backend::copy_into(exec, columns.middle_cols(at, n), buffer(exec), filled_);
      filled_ += n;
      at += n;
      if (filled_ == b) absorb_buffer(exec);
    }
  }

  subspace<Work, Backend> finish(execution& exec) {
    constexpr const char* where = "ogpsa::frequent_directions::finish";
    OGPSA_REQUIRE(count_ + filled_ > 0, state_error, where,
                  "block '" << block_ << "': no reference snapshot was fed");
    const column_ref<Work> tail = pending();
    add_columns(exec, tail);
    const joint j = joint_spectrum(exec, tail);
    subspace<Work, Backend> out;
    const index_t k = detail::select_rank(j.s.values, energy_ + j.incoming_energy, params_.rank, params_.energy,
                                          std::min(dimension_, count_ + filled_), eps, out);
    host_vector along(width() + filled_);  // [B C]^T A 1
    along.head(width()) = Backend::gram(exec, sketch_, sum_).col(0);
    if (filled_ > 0)
      along.tail(filled_) = Backend::gram_with_tail(exec, sum_, tail).row(0).tail(filled_).transpose();
    const host_matrix v = j.s.vectors.leftCols(k);
    const host_vector sign = detail::orientation(v.transpose() * along, v);
    host_matrix w = host_matrix::Zero(width() + filled_, width());
    for (index_t i = 0; i < k; ++i) w.col(i) = v.col(i) * (sign(i) / j.s.values(i));
    Backend::multiply_in_place(exec, sketch_, tail, w);
    buffer_.reset();
    out.basis = k == width() ? std::move(sketch_) : Backend::gather_columns(exec, sketch_, first(k));
    detail::reorthonormalize<Backend>(exec, out.basis);
    return out;
  }

  /// The estimate of a block whose target columns are split across ranks (each rank fed its own
  /// snapshots): every rank's sketch, one slot per rank, is summed into one buffer (one round) and
  /// merged in rank order into a fresh pass, so that every rank finishes the same sketch.
  detail::rounds<subspace<Work, Backend>> estimate(execution& exec, target_shard shard) {
    OGPSA_REQUIRE(shard.split != target_split::rows, invalid_argument, "ogpsa::frequent_directions::finish",
                  "block '" << block_ << "': sketches cannot be split by target rows");
    if (shard.split == target_split::none) return unsplit(exec);
    return merged(exec, shard.position);
  }

  /// The host form of this pass, for another worker's `merge`. Columns still in the buffer are
  /// first folded into the sketch (one more shrink step, covered by the guarantee).
  sketch_type export_sketch(execution& exec) {
    allocate(exec);
    if (filled_ > 0) absorb_buffer(exec);
    return {Backend::to_host(exec, sketch_), Backend::to_host(exec, sum_), energy_, shrinkage_, count_,
            width()};
  }

  /// Folds in a sketch of other columns of the same block (from `export_sketch`, possibly on
  /// another worker): the result summarizes both, as Frequent Directions' merge (one shrink step of
  /// [B B_other]). Merging into a fresh pass imports a sketch.
  /// \throws shape_error for a sketch of another dimension, invalid_argument for another sketch
  ///         width, numeric_error for NaN/Inf in it.
  void merge(execution& exec, const sketch_type& other) {
    check(other);
    allocate(exec);
    if (filled_ > 0) absorb_buffer(exec);
    if (other.columns.cols() > 0) {  // the other sketch takes the buffer's place for one step
      const matrix columns = Backend::from_host(exec, other.columns);
      shrink(exec, whole(columns));
    }
    Backend::add_into(exec, whole(Backend::from_host(exec, other.column_sum)), sum_, 0);
    energy_ += other.energy;
    shrinkage_ += other.shrinkage;
    count_ += other.count;
  }

 private:
  static constexpr double eps = detail::gram_route_eps<Work>;

  detail::rounds<subspace<Work, Backend>> unsplit(execution& exec) { co_return finish(exec); }

  detail::rounds<subspace<Work, Backend>> merged(execution& exec, rank_position position) {
    const sketch_type mine = export_sketch(exec);
    const index_t d = dimension_, l = width(), slot = d * l + d + 3;
    std::vector<double> all(static_cast<std::size_t>(position.ranks * slot), 0.0);
    double* at = all.data() + position.rank * slot;
    Eigen::Map<host_matrix>(at, d, l) = mine.columns.template cast<double>();
    Eigen::Map<host_matrix>(at + d * l, d, 1) = mine.column_sum.template cast<double>();
    at[d * l + d] = mine.energy;
    at[d * l + d + 1] = mine.shrinkage;
    at[d * l + d + 2] = static_cast<double>(mine.count);
    co_await detail::summed(std::span<double>(all));
    frequent_directions_pass whole(params_, dimension_, block_);
    for (int r = 0; r < position.ranks; ++r) {
      const double* from = all.data() + r * slot;
      whole.merge(exec, {Eigen::Map<const host_matrix>(from, d, l).template cast<Work>(),
                         Eigen::Map<const host_matrix>(from + d * l, d, 1).template cast<Work>(), from[d * l + d],
                         from[d * l + d + 1], static_cast<index_t>(from[d * l + d + 2]), l});
    }
    co_return whole.finish(exec);
  }

  index_t width() const { return params_.width(); }

  static column_ref<Work> whole(const matrix& m) { return {m.data(), m.rows(), m.cols(), 1, m.rows()}; }

  /// The columns gathered in the buffer since the last update (none when there is no buffer).
  column_ref<Work> pending() const {
    return buffer_ ? column_ref<Work>{buffer_->data(), dimension_, filled_, 1, dimension_}
                   : column_ref<Work>{nullptr, dimension_, 0, 1, dimension_};
  }

  void allocate(execution& exec) {
    if (allocated_) return;
    sketch_ = Backend::template zeros<Work>(exec, dimension_, width());
    sum_ = Backend::template zeros<Work>(exec, dimension_, 1);
    squared_ = host_vector::Zero(width());
    allocated_ = true;
  }

  matrix& buffer(execution& exec) {
    if (!buffer_) buffer_ = Backend::template zeros<Work>(exec, dimension_, params_.block_columns());
    return *buffer_;
  }

  void add_columns(execution& exec, column_ref<Work> columns) {
    for (index_t j = 0; j < columns.cols; ++j) Backend::add_into(exec, columns.middle_cols(j, 1), sum_, 0);
  }

  /// One update with the columns `incoming` (the buffer's, or a caller's block read in place).
  void absorb(execution& exec, column_ref<Work> incoming) {
    add_columns(exec, incoming);
    energy_ += shrink(exec, incoming);
    count_ += incoming.cols;
  }

  void absorb_buffer(execution& exec) {
    absorb(exec, pending());
    filled_ = 0;
  }

  struct joint {
    detail::spectrum s;
    double incoming_energy;
  };

  /// The spectrum of [B C] from its Gram matrix. B^T B is the diagonal of squared lengths the
  /// last update left (to the rounding of B itself), so one pass over B and C gives the rest,
  /// [B C]^T C.
  joint joint_spectrum(execution& exec, column_ref<Work> incoming) const {
    const index_t l = width(), n = incoming.cols;
    const host_matrix cross = n > 0 ? Backend::gram_with_tail(exec, sketch_, incoming) : host_matrix(l, 0);
    host_matrix g(l + n, l + n);
    g.topLeftCorner(l, l) = squared_.asDiagonal();
    g.rightCols(n) = cross;
    g.bottomLeftCorner(n, l) = cross.topRows(l).transpose();
    return {detail::gram_spectrum(g), g.bottomRightCorner(n, n).trace()};
  }

  /// One Frequent Directions step with the columns `incoming`; returns their energy.
  double shrink(execution& exec, column_ref<Work> incoming) {
    const index_t l = width();
    const joint j = joint_spectrum(exec, incoming);
    const double delta = j.s.values(l) * j.s.values(l);
    host_matrix w = host_matrix::Zero(l + incoming.cols, l);
    for (index_t i = 0; i < l; ++i) {
      const double lambda = j.s.values(i) * j.s.values(i);
      squared_(i) = std::max(lambda - delta, 0.0);
      if (lambda > delta) w.col(i) = j.s.vectors.col(i) * std::sqrt(1 - delta / lambda);
    }
    Backend::multiply_in_place(exec, sketch_, incoming, w);
    shrinkage_ += delta;
    return j.incoming_energy;
  }

  void check(const sketch_type& other) const {
    constexpr const char* where = "ogpsa::frequent_directions::merge";
    OGPSA_REQUIRE(other.columns.rows() == dimension_ && other.column_sum.rows() == dimension_ &&
                      other.column_sum.cols() == 1,
                  shape_error, where,
                  "block '" << block_ << "': the sketch has " << other.columns.rows() << " rows and a "
                            << other.column_sum.rows() << " x " << other.column_sum.cols()
                            << " column sum, the block's dimension is " << dimension_);
    OGPSA_REQUIRE(other.width == width(), invalid_argument, where,
                  "block '" << block_ << "': sketch width " << other.width
                            << " differs from this estimator's " << width());
    OGPSA_REQUIRE(other.columns.allFinite() && other.column_sum.allFinite() && std::isfinite(other.energy) &&
                      std::isfinite(other.shrinkage),
                  numeric_error, where, "block '" << block_ << "': the sketch contains NaN or Inf");
  }

  static std::vector<index_t> first(index_t k) {
    std::vector<index_t> cols(static_cast<std::size_t>(k));
    std::iota(cols.begin(), cols.end(), index_t{0});
    return cols;
  }

  frequent_directions params_;
  index_t dimension_;
  std::string block_;
  bool allocated_ = false;
  matrix sketch_;                ///< B
  std::optional<matrix> buffer_;  ///< C: b columns, of which the first `filled_` are pending
  matrix sum_;                   ///< A 1
  host_vector squared_;        ///< the diagonal of B^T B
  index_t filled_ = 0;
  index_t count_ = 0;
  double energy_ = 0;
  double shrinkage_ = 0;
};

/// The former name of `frequent_directions`, which is Frequent Directions, not an incremental SVD.
using incremental_svd [[deprecated("renamed ogpsa::frequent_directions")]] = frequent_directions;
/// The former name of `frequent_directions_sketch`.
template <class Work>
using incremental_svd_sketch [[deprecated("renamed ogpsa::frequent_directions_sketch")]] =
    frequent_directions_sketch<Work>;

}  // namespace ogpsa
