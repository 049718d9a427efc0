#include "base/error.h"

#include <cstdio>
#include <cstdlib>

namespace lowbit {

namespace {
std::string format_error(std::string_view component, std::string_view message) {
  std::string s;
  s.reserve(component.size() + message.size() + 3);
  s += '[';
  s += component;
  s += "] ";
  s += message;
  return s;
}
}  // namespace

Error::Error(std::string_view component, std::string_view message)
    : std::runtime_error(format_error(component, message)), component_(component) {}

void assert_fail(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "lowbit: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
  std::abort();
}

}  // namespace lowbit
