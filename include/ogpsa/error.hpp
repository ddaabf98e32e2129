#pragma once
/// \file
/// The exception hierarchy and the macros that throw it.
///
/// Every exception ogpsa throws derives from a standard exception, so `catch (const std::exception&)`
/// sees all of them, and its message reads `where(): what is wrong (the value seen)`, for example
/// `ogpsa::exact_svd::finish(): block 'fc1': rank 40 exceeds min(d, m) = 32`.
///
/// | type               | derives from            | thrown for                                          |
/// |--------------------|-------------------------|-----------------------------------------------------|
/// | `invalid_argument` | `std::invalid_argument` | a hyper-parameter or argument outside its domain    |
/// | `shape_error`      | `invalid_argument`      | extents that do not match what was registered       |
/// | `layout_error`     | `invalid_argument`      | strides the operation cannot use (non-contiguous)   |
/// | `numeric_error`    | `std::domain_error`     | NaN or Inf where finite data is required            |
/// | `state_error`      | `std::logic_error`      | a call made in the wrong order (no subspace yet...) |
/// | `backend_error`    | `std::runtime_error`    | a failure reported by a backend library (CUDA, ...) |
/// | `out_of_memory`    | `backend_error`         | a backend could not allocate device or pinned memory |
/// | `communication_error` | `backend_error`      | a collective across ranks failed or timed out       |

#include <sstream>
#include <stdexcept>
#include <string>

namespace ogpsa {

class invalid_argument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

class shape_error : public invalid_argument {
 public:
  using invalid_argument::invalid_argument;
};

class layout_error : public invalid_argument {
 public:
  using invalid_argument::invalid_argument;
};

class numeric_error : public std::domain_error {
 public:
  using std::domain_error::domain_error;
};

class state_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

class backend_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A device allocation failed: the device (or its allocator) ran out of memory.
class out_of_memory : public backend_error {
 public:
  using backend_error::backend_error;
};

/// A collective across ranks failed or timed out (a peer died, the network broke).
class communication_error : public backend_error {
 public:
  using backend_error::backend_error;
};

}  // namespace ogpsa

namespace ogpsa::detail {

/// Throws `Kind` with the message `where(): ` followed by what `write` streams. Out of line, so
/// that a constexpr function may check its arguments (a stream is not a literal type, and C++20
/// allows none in a constexpr function's body, even on a path not taken at compile time).
template <class Kind, class Where, class Writer>
[[noreturn]] void throw_streamed(const Where& where, const Writer& write) {
  std::ostringstream message;
  message << where << "(): ";
  write(message);
  throw Kind(message.str());
}

}  // namespace ogpsa::detail

/// Throws `ogpsa::Kind` with the message `Where(): <streamed message>`.
/// `Message` is a stream expression: `OGPSA_FAIL(invalid_argument, "ogpsa::soft", "alpha " << a)`.
#define OGPSA_FAIL(Kind, Where, Message)                                                     \
  ::ogpsa::detail::throw_streamed<::ogpsa::Kind>((Where), [&](std::ostream& ogpsa_stream_) { \
    ogpsa_stream_ << Message;                                                                \
  })

/// Throws like OGPSA_FAIL when `Condition` does not hold.
#define OGPSA_REQUIRE(Condition, Kind, Where, Message) \
  do {                                                 \
    if (!(Condition)) OGPSA_FAIL(Kind, Where, Message); \
  } while (false)
