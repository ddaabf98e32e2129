#pragma once
/// \file
/// Subspace families: how a parameter block's gradient is seen by estimators and projections.

#include <ostream>
#include <string_view>

namespace ogpsa {

/// How a block's gradient G is split into vectors that the subspace acts on.
///
/// | family  | vectors (the "target space")     | basis   | projection            | basis memory |
/// |---------|----------------------------------|---------|-----------------------|--------------|
/// | `flat`  | vec(G), one vector of length d   | d x k   | g - U (U^T g)         | k * numel    |
/// | `left`  | the n columns of G (m x n)       | m x k   | G - U (U^T G)         | k * m        |
/// | `right` | the m rows of G (columns of G^T) | n x k   | G - (G V) V^T         | k * n        |
///
/// `flat` is what the published OGPSA code does, per parameter tensor. The matrix-side families
/// (GPM / GaLore style) scale to large models: for a PyTorch `Linear` weight (out x in), `right`
/// protects the input space the layer reads.
enum class family { flat, left, right };

constexpr std::string_view to_string(family f) noexcept {
  switch (f) {
    case family::flat: return "flat";
    case family::left: return "left";
    case family::right: return "right";
  }
  return "unknown";
}

inline std::ostream& operator<<(std::ostream& os, family f) { return os << to_string(f); }

}  // namespace ogpsa
