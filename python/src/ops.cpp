/// \file
/// The extension's TorchScript registrations: the custom class `torch.classes.ogpsa.Projector`
/// and the operators `torch.ops.ogpsa.*` over it (no Python C API: loadable with
/// `torch.ops.load_library`, opaque to `torch.compile`). The operator contract is documented in
/// python/README.md.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/custom_class.h>
#include <torch/library.h>

#include "errors.hpp"
#include "handle.hpp"
#include "ogpsa/version.hpp"

namespace ogpsa::python {
namespace {

options to_options(const c10::Dict<std::string, std::string>& given) {
  options out;
  for (const auto& item : given) out[item.key()] = item.value();
  return out;
}

family parse_family(const std::string& name) {
  for (family f : {family::flat, family::left, family::right})
    if (name == to_string(f)) return f;
  OGPSA_FAIL(invalid_argument, "ogpsa.Projector.add_block",
             "unknown family '" << name << "' (known: flat, left, right)");
}

/// The projector Python holds: a `projector_handle` chosen by the constructor's settings.
struct Projector : ::torch::CustomClassHolder {
  std::unique_ptr<projector_handle> impl;

  Projector(const std::string& estimator, const c10::Dict<std::string, std::string>& estimator_options,
            const std::string& rule, const c10::Dict<std::string, std::string>& rule_options,
            std::int64_t refresh_every, const std::string& gradient_dtype, const std::string& basis_dtype,
            const std::string& device) {
    translated("ogpsa.Projector", [&] {
      OGPSA_REQUIRE(
          device == "cpu", invalid_argument, "ogpsa.Projector",
          "device '" << device << "' is not compiled into this extension (it projects CPU tensors)");
      impl = make_projector(parse_estimator(estimator, to_options(estimator_options)),
                            parse_rule(rule, to_options(rule_options)), parse_schedule(refresh_every),
                            parse_dtype(gradient_dtype, "gradient"), parse_dtype(basis_dtype, "basis"));
    });
  }
};

using handle = c10::intrusive_ptr<Projector>;

std::int64_t add_block(const handle& p, const std::string& name, std::vector<std::int64_t> sizes,
                       std::vector<std::int64_t> strides, const std::string& kind) {
  return translated("ogpsa.add_block", [&] {
    return p->impl->add_block(name, std::move(sizes), std::move(strides), parse_family(kind));
  });
}

void begin_reference_pass(const handle& p) {
  translated("ogpsa.begin_reference_pass", [&] { p->impl->begin_reference_pass(); });
}
void feed(const handle& p, std::int64_t block, const at::Tensor& gradient, std::int64_t set) {
  translated("ogpsa.feed", [&] { p->impl->feed(block, gradient, set); });
}
void feed_columns(const handle& p, std::int64_t block, const at::Tensor& columns, std::int64_t set) {
  translated("ogpsa.feed_columns", [&] { p->impl->feed_columns(block, columns, set); });
}
at::Tensor finish_reference_pass(const handle& p) {
  return translated("ogpsa.finish_reference_pass", [&] { return p->impl->finish_reference_pass(); });
}
void abandon_reference_pass(const handle& p) {
  p->impl->abandon_reference_pass();
}

at::Tensor project(const handle& p, std::vector<std::int64_t> blocks, std::vector<at::Tensor> gradients,
                   bool count_step, bool diagnostics) {
  return translated("ogpsa.project",
                    [&] { return p->impl->project(blocks, gradients, count_step, diagnostics); });
}

void count_step(const handle& p) {
  p->impl->count_step();
}
bool refresh_due(const handle& p) {
  return translated("ogpsa.refresh_due", [&] { return p->impl->refresh_due(); });
}
bool ready(const handle& p) {
  return p->impl->ready();
}
std::vector<std::int64_t> counters(const handle& p) {
  return p->impl->counters();
}
at::Tensor basis(const handle& p, std::int64_t block) {
  return translated("ogpsa.basis", [&] { return p->impl->basis(block); });
}

c10::Dict<std::string, std::string> settings(const handle& p) {
  c10::Dict<std::string, std::string> out;
  for (auto& [key, value] : p->impl->settings()) out.insert(key, value);
  return out;
}

tensor_dict export_state(const handle& p) {
  return translated("ogpsa.export_state", [&] { return p->impl->export_state(); });
}
void import_state(const handle& p, const tensor_dict& state) {
  translated("ogpsa.import_state", [&] { p->impl->import_state(state); });
}

/// The version of the headers the extension was compiled from: the package's `__version__`.
std::string version() {
  return std::to_string(OGPSA_VERSION_MAJOR) + "." + std::to_string(OGPSA_VERSION_MINOR) + "." +
         std::to_string(OGPSA_VERSION_PATCH);
}

}  // namespace
}  // namespace ogpsa::python

TORCH_LIBRARY(ogpsa, m) {
  using namespace ogpsa::python;
  m.class_<Projector>("Projector")
      .def(torch::init<std::string, c10::Dict<std::string, std::string>, std::string,
                       c10::Dict<std::string, std::string>, std::int64_t, std::string, std::string,
                       std::string>());
  m.def("version() -> str", version);
#define OGPSA_P "__torch__.torch.classes.ogpsa.Projector p"
  m.def("add_block(" OGPSA_P ", str name, int[] sizes, int[] strides, str family) -> int", add_block);
  m.def("begin_reference_pass(" OGPSA_P ") -> ()", begin_reference_pass);
  m.def("feed(" OGPSA_P ", int block, Tensor gradient, int set) -> ()", feed);
  m.def("feed_columns(" OGPSA_P ", int block, Tensor columns, int set) -> ()", feed_columns);
  m.def("finish_reference_pass(" OGPSA_P ") -> Tensor", finish_reference_pass);
  m.def("abandon_reference_pass(" OGPSA_P ") -> ()", abandon_reference_pass);
  m.def("project(" OGPSA_P
        ", int[] blocks, Tensor(a!)[] gradients, bool count_step, bool diagnostics) -> Tensor",
        project);
  m.def("count_step(" OGPSA_P ") -> ()", count_step);
  m.def("refresh_due(" OGPSA_P ") -> bool", refresh_due);
  m.def("ready(" OGPSA_P ") -> bool", ready);
  m.def("counters(" OGPSA_P ") -> int[]", counters);
  m.def("basis(" OGPSA_P ", int block) -> Tensor", basis);
  m.def("settings(" OGPSA_P ") -> Dict(str, str)", settings);
  m.def("export_state(" OGPSA_P ") -> Dict(str, Tensor)", export_state);
  m.def("import_state(" OGPSA_P ", Dict(str, Tensor) state) -> ()", import_state);
#undef OGPSA_P
}
