#pragma once
/// \file
/// A projector's state as a dictionary of plain tensors (what Python's `state_dict()` holds), and
/// back. Keys: `steps`, `steps_since_refresh`, `refreshes` (int64, 0-d); per block i,
/// `blocks.<i>.extents` (int64) and, once estimated, `blocks.<i>.basis` (rank x dimension in the
/// basis dtype, one direction per row, as `ogpsa::torch::write_state` stores it),
/// `blocks.<i>.strengths` (float64), `blocks.<i>.captured_energy` (float64, 0-d) and
/// `blocks.<i>.dropped` (int64, 0-d). Names and families are the registration's, not stored.

#include <cstdint>
#include <cstring>
#include <string>

#include <ATen/ATen.h>

#include "handle.hpp"
#include "ogpsa/projector_state.hpp"
#include "ogpsa/torch/serialize.hpp"

namespace ogpsa::python {
namespace detail {

inline constexpr const char* import_name = "ogpsa.Projector.import_state";

inline std::string block_key(std::size_t i, const char* field) {
  return "blocks." + std::to_string(i) + "." + field;
}

inline at::Tensor scalar_tensor(std::int64_t v) {
  return at::scalar_tensor(v, at::kLong);
}
inline at::Tensor scalar_tensor(double v) {
  return at::scalar_tensor(v, at::kDouble);
}

/// Entry `key` of `state`: a CPU tensor of `dtype` with `dims` dimensions.
inline at::Tensor entry(const tensor_dict& state, const std::string& key, c10::ScalarType dtype,
                        std::int64_t dims) {
  OGPSA_REQUIRE(state.contains(key), invalid_argument, import_name, "the state has no entry '" << key << "'");
  at::Tensor t = state.at(key);
  OGPSA_REQUIRE(t.defined() && t.scalar_type() == dtype && t.dim() == dims && t.device().is_cpu(),
                invalid_argument, import_name,
                "entry '" << key << "' must be a " << dims << "-dimensional CPU tensor of dtype " << dtype
                          << ", got "
                          << (t.defined() ? c10::toString(t.scalar_type()) : "an undefined tensor")
                          << " of sizes " << (t.defined() ? t.sizes() : at::IntArrayRef{}) << " on "
                          << (t.defined() ? t.device() : at::Device(at::kCPU)));
  return t.contiguous();
}

inline std::uint64_t count_entry(const tensor_dict& state, const std::string& key) {
  const std::int64_t v = entry(state, key, at::kLong, 0).item<std::int64_t>();
  OGPSA_REQUIRE(v >= 0, invalid_argument, import_name, "entry '" << key << "' is negative (" << v << ")");
  return static_cast<std::uint64_t>(v);
}

}  // namespace detail

template <class Basis>
tensor_dict to_tensors(const projector_state<Basis>& s) {
  using torch::detail::basis_tensor;
  using torch::detail::double_tensor;
  using torch::detail::int64_tensor;
  tensor_dict out;
  out.insert("steps", detail::scalar_tensor(static_cast<std::int64_t>(s.steps)));
  out.insert("steps_since_refresh", detail::scalar_tensor(static_cast<std::int64_t>(s.steps_since_refresh)));
  out.insert("refreshes", detail::scalar_tensor(static_cast<std::int64_t>(s.refreshes)));
  for (std::size_t i = 0; i < s.blocks.size(); ++i) {
    const block_state<Basis>& b = s.blocks[i];
    out.insert(detail::block_key(i, "extents"), int64_tensor(b.extents));
    if (!b.has_subspace) continue;
    out.insert(detail::block_key(i, "basis"), basis_tensor(b.basis));
    out.insert(detail::block_key(i, "strengths"), double_tensor(b.strengths));
    out.insert(detail::block_key(i, "captured_energy"), detail::scalar_tensor(b.captured_energy));
    out.insert(detail::block_key(i, "dropped"), detail::scalar_tensor(static_cast<std::int64_t>(b.dropped)));
  }
  return out;
}

/// `registered` (the projector's own state: names, families, extents) with the counters and
/// subspaces of `state`. \throws invalid_argument for a missing entry, one of the wrong dtype or
/// dimensions, extents other than the registration's, or an entry this projector has no block for.
template <class Basis>
projector_state<Basis> from_tensors(const tensor_dict& state, projector_state<Basis> registered) {
  constexpr const char* where = detail::import_name;
  registered.steps = detail::count_entry(state, "steps");
  registered.steps_since_refresh = detail::count_entry(state, "steps_since_refresh");
  registered.refreshes = detail::count_entry(state, "refreshes");
  std::size_t used = 3;
  for (std::size_t i = 0; i < registered.blocks.size(); ++i) {
    block_state<Basis>& b = registered.blocks[i];
    const at::Tensor extents = detail::entry(state, detail::block_key(i, "extents"), at::kLong, 1);
    const std::vector<index_t> saved(extents.data_ptr<std::int64_t>(),
                                     extents.data_ptr<std::int64_t>() + extents.numel());
    OGPSA_REQUIRE(saved == b.extents, shape_error, where,
                  "block " << i << " ('" << b.name << "') has extents "
                           << ogpsa::detail::format_indices(b.extents) << ", the state's are "
                           << ogpsa::detail::format_indices(saved));
    ++used;
    b.has_subspace = state.contains(detail::block_key(i, "basis"));
    if (!b.has_subspace) continue;
    const at::Tensor basis =
        detail::entry(state, detail::block_key(i, "basis"), torch::scalar_type_of<Basis>, 2);
    b.basis.resize(basis.size(1), basis.size(0));
    if (b.basis.size() > 0)
      std::memcpy(b.basis.data(), basis.data_ptr(), static_cast<std::size_t>(b.basis.size()) * sizeof(Basis));
    const at::Tensor strengths = detail::entry(state, detail::block_key(i, "strengths"), at::kDouble, 1);
    b.strengths.assign(strengths.data_ptr<double>(), strengths.data_ptr<double>() + strengths.numel());
    OGPSA_REQUIRE(b.strengths.size() == static_cast<std::size_t>(b.basis.cols()), shape_error, where,
                  "block " << i << " ('" << b.name << "') has a basis of rank " << b.basis.cols() << " but "
                           << b.strengths.size() << " strengths");
    b.captured_energy =
        detail::entry(state, detail::block_key(i, "captured_energy"), at::kDouble, 0).item<double>();
    b.dropped = static_cast<index_t>(detail::count_entry(state, detail::block_key(i, "dropped")));
    used += 4;
  }
  OGPSA_REQUIRE(used == state.size(), invalid_argument, where,
                "the state has " << state.size() - used << " entries this projector of "
                                 << registered.blocks.size()
                                 << " blocks has no place for (saved from another model?)");
  return registered;
}

}  // namespace ogpsa::python
