#pragma once
/// \file
/// Element types a view may hold, and the type their dot products accumulate in.
///
/// `element_traits<T>` is the single extension point: a new storage type (bf16, fp16) becomes
/// usable everywhere by specializing it, with `accumulator` at least `float`, so that reductions
/// over low-precision data never accumulate in low precision.

#include <concepts>
#include <type_traits>

namespace ogpsa {

/// Primary template: not an element type. Specializations set `is_element = true`.
template <class T>
struct element_traits {
  static constexpr bool is_element = false;
};

template <>
struct element_traits<float> {
  static constexpr bool is_element = true;
  using accumulator = float;
  static constexpr const char* name = "float";
};

template <>
struct element_traits<double> {
  static constexpr bool is_element = true;
  using accumulator = double;
  static constexpr const char* name = "double";
};

/// A type ogpsa can read and write as tensor data (cv-qualifiers ignored).
template <class T>
concept element = element_traits<std::remove_cv_t<T>>::is_element;

/// The wider of two elements' accumulators: dot products between a `float` gradient and a
/// `double` basis accumulate in `double`.
template <element A, element B>
using accumulator_t = std::common_type_t<typename element_traits<std::remove_cv_t<A>>::accumulator,
                                         typename element_traits<std::remove_cv_t<B>>::accumulator>;

/// The type estimators compute in for a basis stored as `Basis`: its accumulator.
template <element Basis>
using working_t = typename element_traits<std::remove_cv_t<Basis>>::accumulator;

}  // namespace ogpsa
