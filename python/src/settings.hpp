#pragma once
/// \file
/// The extension's settings: estimator, rule and schedule chosen by name at run time, their
/// hyper-parameters read from text (what a Python keyword argument becomes on the way in), and
/// the same policies written back as text so Python can see what the C++ side holds.
///
/// Parsing is strict: a value must be the whole text of its type (`"8"` for a rank, not `"8.0"`
/// or `"8 "`), an unknown key or name is refused, and the message names the function, the key
/// and the text seen.

#include <charconv>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <variant>

#include "ogpsa/ogpsa.hpp"

namespace ogpsa::python {

/// Text settings, as Python passes them: hyper-parameter name -> value.
using options = std::map<std::string, std::string>;

using estimator_choice =
    std::variant<mean_gradient, exact_svd, randomized_svd, single_pass_svd, frequent_directions>;
using rule_choice = std::variant<orthogonal, soft, conflict_only>;

/// The library's two schedules behind one type, so the schedule is chosen at run time without
/// doubling the projector types the extension compiles.
struct any_schedule {
  std::variant<every_n_steps, fixed_basis> chosen = every_n_steps{};

  void validate() const {
    std::visit([](const auto& s) { s.validate(); }, chosen);
  }
  bool due(std::size_t steps_since_refresh) const {
    return std::visit([&](const auto& s) { return s.due(steps_since_refresh); }, chosen);
  }
};

/// The gradient and basis element types the extension is compiled for.
enum class dtype { float32, bfloat16, float16, float64 };

namespace detail {

/// Reads keys out of a settings map, consuming them, so that the keys left at the end are the
/// unknown ones.
class option_reader {
 public:
  option_reader(options given, std::string owner, const char* where)
      : left_(std::move(given)), owner_(std::move(owner)), where_(where) {}

  template <class T>
  void read(const char* key, T& out) {
    if (const auto text = take(key)) out = parse<T>(key, *text);
  }
  template <class T>
  void read(const char* key, std::optional<T>& out) {
    if (const auto text = take(key)) out = parse<T>(key, *text);
  }

  /// The enumerator whose name is the value of `key`, or `fallback` when the key is absent.
  template <class E>
  E read_enum(const char* key, E fallback, std::initializer_list<std::pair<const char*, E>> names) {
    const auto text = take(key);
    if (!text) return fallback;
    std::string known;
    for (const auto& [name, value] : names) {
      if (*text == name) return value;
      known += (known.empty() ? "" : ", ") + std::string(name);
    }
    OGPSA_FAIL(invalid_argument, where_,
               owner_ << " setting '" << key << "' must be one of " << known << ", got '" << *text << "'");
  }

  /// \throws invalid_argument naming the first key nobody read.
  void finish() const {
    if (left_.empty()) return;
    OGPSA_FAIL(invalid_argument, where_,
               owner_ << " has no setting '" << left_.begin()->first << "' (value '" << left_.begin()->second
                      << "')");
  }

 private:
  /// The value of `key`, removed from the keys left; nothing when absent.
  std::optional<std::string> take(const char* key) {
    const auto it = left_.find(key);
    if (it == left_.end()) return std::nullopt;
    std::string text = std::move(it->second);
    left_.erase(it);
    return text;
  }

  template <class T>
  T parse(const char* key, const std::string& text) const {
    if constexpr (std::is_same_v<T, bool>) {
      if (text == "true") return true;
      if (text == "false") return false;
      OGPSA_FAIL(invalid_argument, where_,
                 owner_ << " setting '" << key << "' must be true or false, got '" << text << "'");
    } else {
      T value{};
      const char* end = text.data() + text.size();
      const auto [stop, error] = std::from_chars(text.data(), end, value);
      OGPSA_REQUIRE(error == std::errc{} && stop == end && !text.empty(), invalid_argument, where_,
                    owner_ << " setting '" << key << "' must be "
                           << (std::is_integral_v<T> ? "an integer" : "a number") << " in the range of "
                           << type_name<T>() << ", got '" << text << "'");
      return value;
    }
  }

  template <class T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, std::uint64_t>)
      return "uint64";
    else if constexpr (std::is_integral_v<T>)
      return "int64";
    else
      return "float64";
  }

  options left_;
  std::string owner_;
  const char* where_;
};

}  // namespace detail

/// The estimator named `name` (`incremental_svd` is the former name of `frequent_directions`)
/// with the hyper-parameters of `given`; the defaults are the library's.
/// \throws invalid_argument for an unknown name or setting, or a value that does not parse;
///         the estimator's own `validate()` checks the ranges later, in the projector.
inline estimator_choice parse_estimator(const std::string& name, const options& given) {
  constexpr const char* where = "ogpsa.Projector";
  detail::option_reader reader(given, "estimator " + name, where);
  estimator_choice out;
  if (name == "mean_gradient") {
    mean_gradient e;
    reader.read("norm_epsilon", e.norm_epsilon);
    reader.read("orthogonalization_epsilon", e.orthogonalization_epsilon);
    reader.read("parallel_tolerance", e.parallel_tolerance);
    reader.read("first_set_required", e.first_set_required);
    out = e;
  } else if (name == "exact_svd") {
    exact_svd e;
    reader.read("rank", e.rank);
    reader.read("energy", e.energy);
    out = e;
  } else if (name == "randomized_svd") {
    randomized_svd e;
    reader.read("rank", e.rank);
    reader.read("energy", e.energy);
    reader.read("oversampling", e.oversampling);
    reader.read("power_iterations", e.power_iterations);
    reader.read("seed", e.seed);
    out = e;
  } else if (name == "single_pass_svd") {
    single_pass_svd e;
    reader.read("rank", e.rank);
    reader.read("energy", e.energy);
    reader.read("oversampling", e.oversampling);
    reader.read("seed", e.seed);
    out = e;
  } else if (name == "frequent_directions" || name == "incremental_svd") {
    frequent_directions e;
    reader.read("rank", e.rank);
    reader.read("energy", e.energy);
    reader.read("sketch_width", e.sketch_width);
    reader.read("block", e.block);
    out = e;
  } else {
    OGPSA_FAIL(
        invalid_argument, where,
        "unknown estimator '" << name
                              << "' (known: mean_gradient, exact_svd, randomized_svd, single_pass_svd, "
                                 "frequent_directions, incremental_svd)");
  }
  reader.finish();
  return out;
}

/// The rule named `name` with the hyper-parameters of `given`. \throws as `parse_estimator`.
inline rule_choice parse_rule(const std::string& name, const options& given) {
  constexpr const char* where = "ogpsa.Projector";
  detail::option_reader reader(given, "rule " + name, where);
  rule_choice out;
  if (name == "orthogonal") {
    out = orthogonal{};
  } else if (name == "soft") {
    soft r;
    reader.read("alpha", r.alpha);
    out = r;
  } else if (name == "conflict_only") {
    using c = conflict_only;
    c r;
    r.behaviour = reader.read_enum(
        "mode", r.behaviour, {{"per_direction", c::mode::per_direction}, {"threshold", c::mode::threshold}});
    reader.read("base_scale", r.base_scale);
    r.several_directions =
        reader.read_enum("several_directions", r.several_directions,
                         {{"project", c::fallback::project}, {"unchanged", c::fallback::unchanged}});
    out = r;
  } else {
    OGPSA_FAIL(invalid_argument, where,
               "unknown rule '" << name << "' (known: orthogonal, soft, conflict_only)");
  }
  reader.finish();
  return out;
}

/// Refresh every `refresh_every` steps, or never after the first estimate when it is 0.
/// \throws invalid_argument for a negative count.
inline any_schedule parse_schedule(std::int64_t refresh_every) {
  OGPSA_REQUIRE(refresh_every >= 0, invalid_argument, "ogpsa.Projector",
                "refresh_every must be >= 1, or 0 for a fixed basis, got " << refresh_every);
  if (refresh_every == 0) return {fixed_basis{}};
  return {every_n_steps{static_cast<std::size_t>(refresh_every)}};
}

inline dtype parse_dtype(const std::string& name, const char* role) {
  for (auto [text, value] : {std::pair{"float32", dtype::float32}, std::pair{"bfloat16", dtype::bfloat16},
                             std::pair{"float16", dtype::float16}, std::pair{"float64", dtype::float64}})
    if (name == text) return value;
  OGPSA_FAIL(invalid_argument, "ogpsa.Projector",
             "unknown " << role << " dtype '" << name << "' (known: float32, bfloat16, float16, float64)");
}

/// The torch name of an element type's dtype.
template <class T>
constexpr const char* dtype_name() {
  if constexpr (std::is_same_v<T, float>)
    return "float32";
  else if constexpr (std::is_same_v<T, bfloat16>)
    return "bfloat16";
  else if constexpr (std::is_same_v<T, float16>)
    return "float16";
  else
    return "float64";
}

namespace detail {

template <class T>
std::string text_of(const T& value) {
  std::ostringstream out;
  out.precision(std::numeric_limits<double>::max_digits10);
  if constexpr (std::is_same_v<T, bool>)
    out << (value ? "true" : "false");
  else
    out << value;
  return out.str();
}

template <class T>
void put(options& out, const char* key, const std::optional<T>& value) {
  if (value) out[key] = text_of(*value);
}
template <class T>
void put(options& out, const char* key, const T& value) {
  out[key] = text_of(value);
}

}  // namespace detail

/// The hyper-parameters a policy holds, as text (`settings` op): what Python tests read back.
inline options describe(const mean_gradient& e) {
  options out;
  detail::put(out, "norm_epsilon", e.norm_epsilon);
  detail::put(out, "orthogonalization_epsilon", e.orthogonalization_epsilon);
  detail::put(out, "parallel_tolerance", e.parallel_tolerance);
  detail::put(out, "first_set_required", e.first_set_required);
  return out;
}
inline options describe(const exact_svd& e) {
  options out;
  detail::put(out, "rank", e.rank);
  detail::put(out, "energy", e.energy);
  return out;
}
inline options describe(const randomized_svd& e) {
  options out;
  detail::put(out, "rank", e.rank);
  detail::put(out, "energy", e.energy);
  detail::put(out, "oversampling", e.oversampling);
  detail::put(out, "power_iterations", e.power_iterations);
  detail::put(out, "seed", e.seed);
  return out;
}
inline options describe(const single_pass_svd& e) {
  options out;
  detail::put(out, "rank", e.rank);
  detail::put(out, "energy", e.energy);
  detail::put(out, "oversampling", e.oversampling);
  detail::put(out, "seed", e.seed);
  return out;
}
inline options describe(const frequent_directions& e) {
  options out;
  detail::put(out, "rank", e.rank);
  detail::put(out, "energy", e.energy);
  detail::put(out, "sketch_width", e.sketch_width);
  detail::put(out, "block", e.block);
  return out;
}
inline options describe(const orthogonal&) {
  return {};
}
inline options describe(const soft& r) {
  options out;
  detail::put(out, "alpha", r.alpha);
  return out;
}
inline options describe(const conflict_only& r) {
  options out;
  out["mode"] = r.behaviour == conflict_only::mode::threshold ? "threshold" : "per_direction";
  detail::put(out, "base_scale", r.base_scale);
  out["several_directions"] =
      r.several_directions == conflict_only::fallback::unchanged ? "unchanged" : "project";
  return out;
}
inline options describe(const any_schedule& s) {
  options out;
  if (const auto* n = std::get_if<every_n_steps>(&s.chosen))
    out["refresh_every"] = detail::text_of(n->n);
  else
    out["refresh_every"] = "0";
  return out;
}

}  // namespace ogpsa::python
