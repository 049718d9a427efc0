// Errors: the two kinds lowbit distinguishes (ARCHITECTURE.md convention 7).
//  - Bad input (files, recipes, flags) throws lowbit::Error. Its message reads
//    "[component] what and where"; the CLI catches it once and prints one line.
//  - Broken invariants use LOWBIT_ASSERT, which is always on and aborts with file:line.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace lowbit {

class Error : public std::runtime_error {
 public:
  Error(std::string_view component, std::string_view message);
  const std::string& component() const { return component_; }

 private:
  std::string component_;
};

[[noreturn]] void assert_fail(const char* expr, const char* file, int line);

}  // namespace lowbit

#define LOWBIT_ASSERT(cond) \
  ((cond) ? static_cast<void>(0) : ::lowbit::assert_fail(#cond, __FILE__, __LINE__))
