#pragma once
/// \file
/// A projector's saved state (`ogpsa::projector_state`) in a LibTorch archive, bit for bit, so it
/// can sit next to (or inside) a model and optimizer checkpoint:
///
///     torch::serialize::OutputArchive archive;
///     ogpsa::torch::write_state(archive, projector.state());
///     archive.save_to("ogpsa.pt");
///     ...
///     torch::serialize::InputArchive in;
///     in.load_from("ogpsa.pt");
///     projector.restore(ogpsa::torch::read_state<float>(in));
///
/// Layout (format 1): integers `format`, `steps`, `steps_since_refresh`, `refreshes`, `blocks`, and
/// one nested archive `block<i>` per block holding `name`, `family` (as text), `extents` (int64),
/// `has_subspace`, `basis` (rank x dimension, one direction per row, in the basis's own dtype),
/// `strengths` (double), `captured_energy` and `dropped`. Tensors are written as buffers.

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <torch/serialize/archive.h>
#include <torch/types.h>

#include "ogpsa/error.hpp"
#include "ogpsa/family.hpp"
#include "ogpsa/projector_state.hpp"
#include "ogpsa/torch/tensor_view.hpp"

namespace ogpsa::torch {
namespace detail {

inline constexpr std::int64_t state_format = 1;
inline constexpr const char* read_state_name = "ogpsa::torch::read_state";

inline at::Tensor int64_tensor(const std::vector<index_t>& values) {
  at::Tensor t = at::empty({static_cast<std::int64_t>(values.size())}, at::kLong);
  for (std::size_t i = 0; i < values.size(); ++i) t.data_ptr<std::int64_t>()[i] = values[i];
  return t;
}

inline at::Tensor double_tensor(const std::vector<double>& values) {
  at::Tensor t = at::empty({static_cast<std::int64_t>(values.size())}, at::kDouble);
  if (!values.empty()) std::memcpy(t.data_ptr(), values.data(), values.size() * sizeof(double));
  return t;
}

/// The basis as a (rank x dimension) tensor: the column-major Eigen data, read row by row.
template <class Basis>
at::Tensor basis_tensor(const Eigen::Matrix<Basis, Eigen::Dynamic, Eigen::Dynamic>& basis) {
  at::Tensor t = at::empty({static_cast<std::int64_t>(basis.cols()), static_cast<std::int64_t>(basis.rows())},
                           at::TensorOptions().dtype(scalar_type_of<Basis>));
  if (basis.size() > 0)
    std::memcpy(t.data_ptr(), basis.data(), static_cast<std::size_t>(basis.size()) * sizeof(Basis));
  return t;
}

template <class Basis>
void write_block(::torch::serialize::OutputArchive& archive, const block_state<Basis>& b) {
  archive.write("name", c10::IValue(b.name));
  archive.write("family", c10::IValue(std::string(to_string(b.kind))));
  archive.write("extents", int64_tensor(b.extents), /*is_buffer=*/true);
  archive.write("has_subspace", c10::IValue(b.has_subspace));
  archive.write("basis", basis_tensor(b.basis), /*is_buffer=*/true);
  archive.write("strengths", double_tensor(b.strengths), /*is_buffer=*/true);
  archive.write("captured_energy", c10::IValue(b.captured_energy));
  archive.write("dropped", c10::IValue(static_cast<std::int64_t>(b.dropped)));
}

inline c10::IValue read_value(::torch::serialize::InputArchive& archive, const std::string& key) {
  c10::IValue value;
  OGPSA_REQUIRE(archive.try_read(key, value), invalid_argument, read_state_name,
                "the archive has no entry '" << key << "' (not an ogpsa projector state?)");
  return value;
}

inline std::int64_t read_int(::torch::serialize::InputArchive& archive, const std::string& key) {
  const c10::IValue v = read_value(archive, key);
  OGPSA_REQUIRE(v.isInt(), invalid_argument, read_state_name,
                "entry '" << key << "' should be an integer, got " << v.tagKind());
  return v.toInt();
}

inline std::uint64_t read_count(::torch::serialize::InputArchive& archive, const std::string& key) {
  const std::int64_t v = read_int(archive, key);
  OGPSA_REQUIRE(v >= 0, invalid_argument, read_state_name, "entry '" << key << "' is negative (" << v << ")");
  return static_cast<std::uint64_t>(v);
}

inline double read_double(::torch::serialize::InputArchive& archive, const std::string& key) {
  const c10::IValue v = read_value(archive, key);
  OGPSA_REQUIRE(v.isDouble(), invalid_argument, read_state_name,
                "entry '" << key << "' should be a floating-point number, got " << v.tagKind());
  return v.toDouble();
}

inline bool read_bool(::torch::serialize::InputArchive& archive, const std::string& key) {
  const c10::IValue v = read_value(archive, key);
  OGPSA_REQUIRE(v.isBool(), invalid_argument, read_state_name,
                "entry '" << key << "' should be a boolean, got " << v.tagKind());
  return v.toBool();
}

inline std::string read_string(::torch::serialize::InputArchive& archive, const std::string& key) {
  const c10::IValue v = read_value(archive, key);
  OGPSA_REQUIRE(v.isString(), invalid_argument, read_state_name,
                "entry '" << key << "' should be text, got " << v.tagKind());
  return v.toStringRef();
}

inline family read_family(::torch::serialize::InputArchive& archive) {
  const std::string text = read_string(archive, "family");
  for (family f : {family::flat, family::left, family::right})
    if (text == to_string(f)) return f;
  OGPSA_FAIL(invalid_argument, read_state_name, "unknown block family '" << text << "'");
}

/// A contiguous host copy of tensor `key`, which must have `dtype` and `dims` dimensions.
inline at::Tensor read_tensor(::torch::serialize::InputArchive& archive, const std::string& key,
                              c10::ScalarType dtype, std::int64_t dims) {
  at::Tensor t;
  OGPSA_REQUIRE(archive.try_read(key, t, /*is_buffer=*/true), invalid_argument, read_state_name,
                "the archive has no tensor '" << key << "' (not an ogpsa projector state?)");
  OGPSA_REQUIRE(t.scalar_type() == dtype && t.dim() == dims, invalid_argument, read_state_name,
                "tensor '" << key << "' should be " << dims << "-dimensional of dtype " << dtype
                           << ", got dtype " << t.scalar_type() << " and sizes " << t.sizes());
  return t.to(at::kCPU).contiguous();
}

template <class T, class Out>
Out read_vector(::torch::serialize::InputArchive& archive, const std::string& key, c10::ScalarType dtype) {
  const at::Tensor t = read_tensor(archive, key, dtype, 1);
  const T* data = t.data_ptr<T>();
  return Out(data, data + t.numel());
}

template <class Basis>
block_state<Basis> read_block(::torch::serialize::InputArchive& archive) {
  block_state<Basis> b;
  b.name = read_string(archive, "name");
  b.kind = read_family(archive);
  b.extents = read_vector<std::int64_t, std::vector<index_t>>(archive, "extents", at::kLong);
  b.has_subspace = read_bool(archive, "has_subspace");
  const at::Tensor basis = read_tensor(archive, "basis", scalar_type_of<Basis>, 2);
  b.basis.resize(basis.size(1), basis.size(0));
  if (b.basis.size() > 0)
    std::memcpy(b.basis.data(), basis.data_ptr(), static_cast<std::size_t>(b.basis.size()) * sizeof(Basis));
  b.strengths = read_vector<double, std::vector<double>>(archive, "strengths", at::kDouble);
  b.captured_energy = read_double(archive, "captured_energy");
  b.dropped = static_cast<index_t>(read_count(archive, "dropped"));
  return b;
}

inline std::string block_key(std::size_t i) {
  return "block" + std::to_string(i);
}

}  // namespace detail

/// Writes `state` into `archive` (see this header's description for the format).
template <torch_element Basis>
void write_state(::torch::serialize::OutputArchive& archive, const projector_state<Basis>& state) {
  archive.write("format", c10::IValue(detail::state_format));
  archive.write("steps", c10::IValue(static_cast<std::int64_t>(state.steps)));
  archive.write("steps_since_refresh", c10::IValue(static_cast<std::int64_t>(state.steps_since_refresh)));
  archive.write("refreshes", c10::IValue(static_cast<std::int64_t>(state.refreshes)));
  archive.write("blocks", c10::IValue(static_cast<std::int64_t>(state.blocks.size())));
  for (std::size_t i = 0; i < state.blocks.size(); ++i) {
    ::torch::serialize::OutputArchive block(archive.compilation_unit());
    detail::write_block(block, state.blocks[i]);
    archive.write(detail::block_key(i), block);
  }
}

/// Reads a state written by `write_state` with the same `Basis` element type.
/// \throws invalid_argument for a missing entry, an entry of the wrong type, a basis of another
///         dtype or another format.
template <torch_element Basis>
projector_state<Basis> read_state(::torch::serialize::InputArchive& archive) {
  const std::int64_t format = detail::read_int(archive, "format");
  OGPSA_REQUIRE(format == detail::state_format, invalid_argument, detail::read_state_name,
                "unsupported projector-state format " << format << " (this version reads format "
                                                      << detail::state_format << ")");
  projector_state<Basis> state;
  state.steps = detail::read_count(archive, "steps");
  state.steps_since_refresh = detail::read_count(archive, "steps_since_refresh");
  state.refreshes = detail::read_count(archive, "refreshes");
  const std::uint64_t blocks = detail::read_count(archive, "blocks");
  for (std::size_t i = 0; i < blocks; ++i) {
    ::torch::serialize::InputArchive block;
    OGPSA_REQUIRE(
        archive.try_read(detail::block_key(i), block), invalid_argument, detail::read_state_name,
        "the archive has no entry '" << detail::block_key(i) << "' (" << blocks << " blocks expected)");
    state.blocks.push_back(detail::read_block<Basis>(block));
  }
  return state;
}

}  // namespace ogpsa::torch
