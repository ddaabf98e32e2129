#pragma once
/// \file
/// Library errors as the Python exceptions of their kind, with the C++ message intact.
///
/// The operators' callers see what LibTorch's bindings make of a C++ exception: `c10::ValueError`
/// becomes ValueError and any other `c10::Error` RuntimeError on every torch version, on both the
/// operator and the custom-class paths; `std::bad_alloc` becomes MemoryError on the operator path
/// (pybind11's translation, which torch's operator bindings keep). So every operator body runs
/// through `translated`, which rethrows
///
/// | thrown                                            | rethrown as                    | Python        |
/// |---------------------------------------------------|--------------------------------|---------------|
/// | `ogpsa::invalid_argument` (shape, layout errors)  | `c10::ValueError`              | ValueError    |
/// | `ogpsa::out_of_memory`, `std::bad_alloc`          | `memory_error` (a `bad_alloc`) | MemoryError   |
/// | `c10::Error` (from a LibTorch call)               | itself                         | its own type  |
/// | any other `std::exception` (state, numeric, ...)  | `c10::Error`                   | RuntimeError  |

#include <exception>
#include <new>
#include <string>
#include <utility>

#include <c10/util/Exception.h>

#include "ogpsa/error.hpp"

namespace ogpsa::python {

/// A `std::bad_alloc` that carries the library's message (which `bad_alloc` itself cannot).
class memory_error : public std::bad_alloc {
 public:
  explicit memory_error(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

/// `body()`, with its exceptions rethrown as in this header's table; `op` names the operator in
/// the message of an allocation failure, which has none of its own.
template <class Body>
decltype(auto) translated(const char* op, Body&& body) {
  try {
    return body();
  } catch (const ogpsa::invalid_argument& e) {
    throw c10::ValueError(e.what(), "");
  } catch (const ogpsa::out_of_memory& e) {
    throw memory_error(e.what());
  } catch (const memory_error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw memory_error(std::string(op) + "(): out of host memory (std::bad_alloc)");
  } catch (const c10::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw c10::Error(e.what(), "");
  }
}

}  // namespace ogpsa::python
