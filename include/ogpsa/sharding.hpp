#pragma once
/// \file
/// Sharded blocks: how a block's gradient is split across the ranks of a distributed run, and what
/// that means in the block's target space (see `ogpsa::family`).

#include <ostream>
#include <string_view>

#include "ogpsa/family.hpp"

namespace ogpsa {

/// How a block's gradient G is laid out across ranks; given to `projector::add_block`, whose view
/// is then this rank's piece of G (and every reference gradient fed is this rank's piece of the
/// cross-rank average).
///
/// | family  | sharding  | the target space is split by | per projection                | basis kept per rank |
/// |---------|-----------|------------------------------|-------------------------------|---------------------|
/// | any     | replicated| nothing (DDP: every rank holds the averaged G) | nothing             | all of U            |
/// | `flat`  | rows, columns | rows: each rank holds a piece of vec(G) | k coefficients summed | its rows of U       |
/// | `left`  | rows      | rows (the rows of G)         | U^T G (k x n) summed          | its rows of U (m_r x k) |
/// | `left`  | columns   | columns (each rank's columns are whole vectors) | nothing    | all of U (m x k)    |
/// | `right` | rows      | columns (G's rows, the vectors, are whole) | nothing         | all of V (n x k)    |
/// | `right` | columns   | rows (G's columns)           | (G V)^T (k x m) summed        | its rows of V (n_r x k) |
///
/// "Summed" coefficients are partial sums over the ranks: a distributed reducer adds them up, for
/// all blocks in one collective per projection, before the rule (which may be nonlinear) applies.
/// A flat block may hold any piece of vec(G) (FSDP and ZeRO-3 flatten and cut parameters anywhere),
/// as long as reference gradients are cut the same way; matrix-side blocks need whole rows or
/// whole columns on each rank.
///
/// A refresh communicates even where a projection does not: the estimate of a split block is a sum
/// over ranks, whichever way it is split (see each estimator's `estimate`; for `right` blocks sharded
/// by rows, `exact_svd` sums n x n values per block and refresh, `randomized_svd` O(n (k + p))).
enum class sharding {
  replicated,  ///< every rank holds the whole gradient (after the data-parallel all-reduce)
  rows,        ///< each rank holds some rows (dimension 0) of G; for a flat block, any piece of it
  columns,     ///< each rank holds some columns (dimension 1) of G
};

constexpr std::string_view to_string(sharding s) noexcept {
  switch (s) {
    case sharding::replicated: return "replicated";
    case sharding::rows: return "rows";
    case sharding::columns: return "columns";
  }
  return "unknown";
}

inline std::ostream& operator<<(std::ostream& os, sharding s) { return os << to_string(s); }

/// What a block's sharding does to its target-space matrix X (one column per target vector), the
/// form estimators and backends see.
enum class target_split {
  none,     ///< every rank holds all of X
  rows,     ///< each rank holds some rows of X: U^T X and the Gram matrix X^T X are sums over ranks
  columns,  ///< each rank holds some columns of X: U^T X is local, X X^T is a sum over ranks
};

/// The target-space split of a block of family `f` laid out as `s` (the table of `sharding`).
constexpr target_split split_of(family f, sharding s) noexcept {
  if (s == sharding::replicated) return target_split::none;
  if (f == family::flat) return target_split::rows;
  const bool rows_of_g = s == sharding::rows;
  return (f == family::left) == rows_of_g ? target_split::rows : target_split::columns;
}

}  // namespace ogpsa
