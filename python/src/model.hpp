#pragma once
/// \file
/// `projector_model<Projector>`: `projector_handle` implemented by one concrete projector over
/// CPU tensors, through the LibTorch tensor views.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "handle.hpp"
#include "ogpsa/torch/tensor_view.hpp"
#include "state_tensors.hpp"

namespace ogpsa::python {
namespace detail {

/// Collects what the projector tells its callbacks into the `projection_column` table.
class projection_recorder {
 public:
  projection_recorder(const std::vector<std::int64_t>& blocks, std::size_t block_count)
      : row_of_(block_count, -1),
        table_(at::zeros({static_cast<std::int64_t>(blocks.size()), projection_columns}, at::kDouble)) {
    for (std::size_t r = 0; r < blocks.size(); ++r)
      row_of_[static_cast<std::size_t>(blocks[r])] = static_cast<std::int64_t>(r);
  }

  void on_projection(const projection_info& i) {
    double* row = row_for(i.index);
    row[rank_column] = static_cast<double>(i.rank);
    row[gradient_norm_column] = i.gradient_norm;
    row[projected_norm_column] = i.projected_norm;
    row[removed_fraction_column] = i.removed_fraction;
    row[cosine_before_column] = i.cosine_before;
    row[cosine_after_column] = i.cosine_after;
    row[scale_column] = i.scale;
  }
  void on_non_finite(const non_finite_info& i) { row_for(i.index)[non_finite_column] = 1; }

  at::Tensor table() const { return table_; }

 private:
  double* row_for(std::size_t block) {
    return table_.data_ptr<double>() + row_of_[block] * projection_columns;
  }

  std::vector<std::int64_t> row_of_;
  at::Tensor table_;
};

/// The target dimension of a block registered as `layout` (see `ogpsa::family`).
template <class View>
index_t target_dimension_of(const View& layout, family kind) {
  if (kind == family::left) return layout.extent(0);
  if (kind == family::right) return layout.extent(1);
  return layout.extent(0) * layout.extent(1);
}

}  // namespace detail

template <class Projector>
class projector_model final : public projector_handle {
 public:
  using gradient_type = typename Projector::gradient_type;
  using basis_type = typename Projector::basis_type;
  using space = typename Projector::memory_space;

  explicit projector_model(Projector p) : p_(std::move(p)) {}

  std::int64_t add_block(const std::string& name, std::vector<std::int64_t> sizes,
                         std::vector<std::int64_t> strides, family kind) override {
    OGPSA_REQUIRE(
        sizes.size() == strides.size(), invalid_argument, "ogpsa.Projector.add_block",
        "block '" << name << "' has " << sizes.size() << " sizes but " << strides.size() << " strides");
    // Registration records extents, layout and family only: the buffer is bound at each
    // projection, so the view is built over a placeholder that is never read.
    static std::byte placeholder;
    const at::Tensor layout = at::from_blob(&placeholder, sizes, strides,
                                            at::TensorOptions().dtype(torch::scalar_type_of<gradient_type>));
    const auto view = torch::matricized_view<gradient_type, space>(layout);
    const block_id id = p_.add_block(name, decltype(view)(nullptr, view.extents(), view.strides()), kind);
    dimensions_.push_back(detail::target_dimension_of(view, kind));
    return static_cast<std::int64_t>(id.index);
  }

  void begin_reference_pass() override { p_.begin_reference_pass(); }

  void feed(std::int64_t block, const at::Tensor& gradient, std::int64_t set) override {
    p_.feed(id_of(block, "feed"), torch::matricized_view<const gradient_type, space>(gradient),
            set_of(set, "feed"));
  }

  void feed_columns(std::int64_t block, const at::Tensor& columns, std::int64_t set) override {
    p_.feed_columns(id_of(block, "feed_columns"), torch::view<const gradient_type, 2, space>(columns),
                    set_of(set, "feed_columns"));
  }

  at::Tensor finish_reference_pass() override {
    p_.finish_reference_pass();
    at::Tensor table = at::zeros({static_cast<std::int64_t>(p_.block_count()), refresh_columns}, at::kDouble);
    double* row = table.data_ptr<double>();
    for (std::size_t i = 0; i < p_.block_count(); ++i, row += refresh_columns) {
      const auto* s = p_.subspace_of(block_id{i});
      row[refreshed_rank_column] = static_cast<double>(s->rank());
      row[dropped_column] = static_cast<double>(s->dropped);
      row[captured_energy_column] = s->captured_energy;
    }
    return table;
  }

  void abandon_reference_pass() noexcept override { p_.abandon_reference_pass(); }

  at::Tensor project(const std::vector<std::int64_t>& blocks, const std::vector<at::Tensor>& gradients,
                     bool count_step, bool diagnostics) override {
    bind(blocks, gradients);
    if (!diagnostics) {
      p_.project_blocks(std::span<const block_id>(batch_));
      if (count_step) p_.count_step();
      return at::zeros({0, projection_columns}, at::kDouble);
    }
    detail::projection_recorder recorder(blocks, p_.block_count());
    p_.project_blocks(std::span<const block_id>(batch_), recorder);
    if (count_step) p_.count_step();
    return recorder.table();
  }

  void count_step() noexcept override { p_.count_step(); }
  bool refresh_due() const override { return p_.refresh_due(); }
  bool ready() const noexcept override { return p_.ready(); }

  std::vector<std::int64_t> counters() const override {
    return {static_cast<std::int64_t>(p_.steps()), static_cast<std::int64_t>(p_.steps_since_refresh()),
            static_cast<std::int64_t>(p_.refreshes())};
  }

  at::Tensor basis(std::int64_t block) const override {
    const block_id id = id_of(block, "basis");
    const auto* s = p_.subspace_of(id);
    if (!s)
      return at::empty({0, dimensions_[id.index]},
                       at::TensorOptions().dtype(torch::scalar_type_of<basis_type>));
    return torch::detail::basis_tensor<basis_type>(s->basis);
  }

  options settings() const override {
    options out{{"estimator", Projector::estimator_type::name},
                {"rule", Projector::rule_type::name},
                {"gradient_dtype", dtype_name<gradient_type>()},
                {"basis_dtype", dtype_name<basis_type>()}};
    for (auto& [key, value] : describe(p_.estimator())) out["estimator." + key] = value;
    for (auto& [key, value] : describe(p_.rule())) out["rule." + key] = value;
    for (auto& [key, value] : describe(p_.schedule())) out[key] = value;
    return out;
  }

  tensor_dict export_state() override { return to_tensors(p_.state()); }
  void import_state(const tensor_dict& state) override { p_.restore(from_tensors(state, p_.state())); }

 private:
  block_id id_of(std::int64_t block, const char* op) const {
    OGPSA_REQUIRE(block >= 0 && static_cast<std::size_t>(block) < p_.block_count(), invalid_argument,
                  std::string("ogpsa.Projector.") + op,
                  "block " << block << " does not exist (" << p_.block_count() << " blocks registered)");
    return block_id{static_cast<std::size_t>(block)};
  }

  static index_t set_of(std::int64_t set, const char* op) {
    OGPSA_REQUIRE(set >= 0, invalid_argument, std::string("ogpsa.Projector.") + op,
                  "the reference set index must be >= 0, got " << set);
    return static_cast<index_t>(set);
  }

  /// Points each listed block at its gradient; checks everything first, so a bad entry changes nothing.
  void bind(const std::vector<std::int64_t>& blocks, const std::vector<at::Tensor>& gradients) {
    constexpr const char* where = "ogpsa.Projector.project";
    OGPSA_REQUIRE(blocks.size() == gradients.size(), invalid_argument, where,
                  blocks.size() << " blocks listed for " << gradients.size() << " gradients");
    std::vector<bool> listed(p_.block_count(), false);
    batch_.clear();
    for (std::int64_t b : blocks) {
      const block_id id = id_of(b, "project");
      OGPSA_REQUIRE(!listed[id.index], invalid_argument, where,
                    "block " << b << " ('" << p_.name(id) << "') is listed twice");
      listed[id.index] = true;
      batch_.push_back(id);
    }
    for (std::size_t i = 0; i < batch_.size(); ++i)
      p_.rebind(batch_[i], torch::matricized_view<gradient_type, space>(gradients[i]));
  }

  Projector p_;
  std::vector<index_t> dimensions_;  ///< each block's target dimension
  std::vector<block_id> batch_;      ///< the blocks of the current projection
};

}  // namespace ogpsa::python
