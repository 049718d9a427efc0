// Helpers shared by the libFuzzer harnesses (fuzz/README.md).
//
// Outcome policy: a lowbit::Error is the expected answer to bad input and counts as a pass.
// Anything else surfaces as a finding: crashes and sanitizer reports, and every other exception
// (std::bad_alloc from a size read before it was validated, nlohmann::json or std::out_of_range
// escaping a parser, ...) since run_parser() lets it through to libFuzzer's uncaught-exception
// abort. Harnesses run with -rss_limit_mb / -malloc_limit_mb (scripts/fuzz.sh), so one huge
// allocation from an unchecked length is reported too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace lowbit::fuzz {

// Calls f(); swallows lowbit::Error only.
template <class F>
void run_parser(F&& f) {
  try {
    f();
  } catch (const Error&) {
  }
}

// Writes `bytes` to a file named `name` in this process's scratch directory (created once under
// $TMPDIR or /tmp, removed at exit) and returns its path; for parsers that only take a path.
std::string write_scratch_file(const std::string& name, const uint8_t* data, size_t size);
inline std::string write_scratch_file(const std::string& name, std::string_view s) {
  return write_scratch_file(name, reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
// The scratch directory itself (for parsers that take a directory).
const std::string& scratch_dir();
// Removes `name` from the scratch directory if present.
void remove_scratch_file(const std::string& name);

// Splits the input at the first occurrence of `sep` (the rest is empty when it is absent).
std::pair<std::string_view, std::string_view> split_once(std::string_view s, std::string_view sep);

// A few strings to tokenize: fixed awkward ones plus `extra` (a slice of the fuzz input).
std::vector<std::string> sample_texts(std::string_view extra);

}  // namespace lowbit::fuzz
