// std::regex compiles and matches by recursion (per nested group when compiling, per pattern
// element when matching), so a pattern from a user or a file with thousands of nested groups
// overflows the stack. Patterns here name tensors and modules: short and shallow. Anything past
// these bounds is refused with an Error instead of being compiled.
#pragma once

#include <regex>
#include <string>
#include <string_view>

namespace lowbit {

inline constexpr size_t kMaxRegexLength = 512;
inline constexpr int kMaxRegexGroups = 32;
// Sequenced quantifiers backtrack polynomially: ".*" ten times takes seconds on a tensor name.
inline constexpr int kMaxRegexQuantifiers = 4;

// The ECMAScript regex of `pattern`. Throws lowbit::Error(component, what + ": ...") when the
// pattern is longer than kMaxRegexLength, opens more than kMaxRegexGroups groups, holds more than
// kMaxRegexQuantifiers quantifiers, has a shape that backtracks exponentially (stacked quantifiers
// "a**"; a quantified group holding a quantifier or '|', e.g. "(a+)+", "(.*)*", "(q|k)*"), or is
// not a valid regex.
std::regex bounded_regex(std::string_view pattern, std::string_view component, const std::string& what);

}  // namespace lowbit
