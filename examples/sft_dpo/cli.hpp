#pragma once
// The command line (CLI11): every option of `options`, documented by --help.
#include <optional>

#include "options.hpp"

namespace sft_dpo {

/// Fills `o` from the command line. Returns an exit code when the program should stop (after
/// --help, --list-methods or a usage error, which is reported on stderr), nothing otherwise.
std::optional<int> parse_command_line(int argc, char** argv, options& o);

}  // namespace sft_dpo
