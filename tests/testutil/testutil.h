// Helpers shared by the test binaries.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lowbit::test {

// Root of the shared assets: $LOWBIT_SHARED if set, else ../shared beside the repo.
std::string shared_dir();
// shared_dir() + "/" + rel. The shared assets are part of the test contract: a missing file
// makes the test that needs it fail, never skip.
std::string shared_path(const std::string& rel);

// A file checked into the repository's tests/ folder (goldens made by scripts beside them).
std::string test_source_path(const std::string& rel);

// A fresh empty temporary directory, removed when the process exits.
std::string temp_dir();

// Writes bytes to a file (for malformed-input tests).
void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);

// Path of the built `lowbit` binary ($LOWBIT_BIN, set by ctest).
std::string lowbit_bin();

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs a shell command line, capturing stdout and stderr.
CommandResult run_command(const std::string& cmdline);

// Runs f and records a test failure unless it throws lowbit::Error whose message contains
// `needle` and, when `component` is non-empty, whose component is `component`.
void expect_error(const std::function<void()>& f, const std::string& needle,
                  const std::string& component = "");

}  // namespace lowbit::test
