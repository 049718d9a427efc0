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
  // The message without the "[component] " prefix.
  std::string_view message() const { return std::string_view(what()).substr(component_.size() + 3); }

 private:
  std::string component_;
};

// Runs f(); a lowbit::Error it throws comes back with `where` + ": " in front of its message
// (same component), e.g. the tensor a low-level "non-finite weight at (0, 17)" belongs to.
template <class F>
decltype(auto) with_error_context(const std::string& where, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(e.component(), where + ": " + std::string(e.message()));
  }
}

[[noreturn]] void assert_fail(const char* expr, const char* file, int line);

}  // namespace lowbit

#define LOWBIT_ASSERT(cond) \
  ((cond) ? static_cast<void>(0) : ::lowbit::assert_fail(#cond, __FILE__, __LINE__))
