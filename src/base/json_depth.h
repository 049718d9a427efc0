// A guard for JSON from untrusted files (config.json, tokenizer.json, safetensors and .lowbit
// headers, adapter configs, measurement files, JSONL training data). nlohmann's parser and
// destructor are iterative, but dump() and every walk over a parsed document (ours included)
// recurse once per nesting level, so a file of a few hundred thousand '[' would overflow the
// stack. No file lowbit reads nests deeper than a handful of levels; anything beyond
// kMaxJsonDepth is refused before parsing.
#pragma once

#include <string>
#include <string_view>

namespace lowbit {

inline constexpr int kMaxJsonDepth = 64;

// The deepest nesting of arrays and objects in `text` (brackets inside strings, escapes honoured,
// do not count), scanning stops once it exceeds `limit`. Malformed text gets whatever depth its
// brackets give; the parser reports the syntax error afterwards.
int json_depth(std::string_view text, int limit = kMaxJsonDepth);

// Throws lowbit::Error(component, what + ": JSON nested deeper than 64 levels") when
// json_depth(text) > kMaxJsonDepth.
void check_json_depth(std::string_view text, std::string_view component, const std::string& what);

}  // namespace lowbit
