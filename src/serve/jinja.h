// A Jinja2-subset template engine for chat templates.
//
// It renders exactly as @huggingface/jinja (the renderer of transformers.js) does: the same
// preprocessing (trim_blocks and lstrip_blocks on, one trailing newline dropped), the same
// grammar, and the same JavaScript-flavoured runtime (undefined vs none, `==` as JavaScript's
// loose equality, numbers as doubles with Int/Float tags, tojson key order kept, error texts).
// tests/serve/data/chat_goldens.json pins this against the reference for real chat templates.
// A few Jinja features the reference lacks are accepted where the reference would raise an error
// (filters count, d, round, select, reject, map with a filter name, bare `default`, `f()` for
// argument-less filters; test arguments such as `is divisibleby(3)`), so the outputs of
// templates the reference renders never differ.
//
// Safety: templates (from model files) and context (from API requests) are untrusted. Parsing
// bounds nesting (kMaxParseDepth, kMaxTreeHeight); rendering bounds recursion, loop iterations,
// evaluation steps, string sizes and output size (RenderOptions). Every failure, syntax or
// runtime, is a lowbit::Error with component "jinja": "line N: what" (raise_exception('msg')
// gives just "msg"). Nothing in a template or context can crash or hang the process.
//
// Known differences from the reference, none reachable by the pinned chat templates:
//  - where the reference crashes with a JavaScript TypeError (`[] | first` used afterwards,
//    `is equalto` without an argument), lowbit yields undefined/false instead;
//  - upper/lower map Latin, Greek, Cyrillic and fullwidth letters only (no final-sigma rule);
//  - indexing a string inside an astral character (a lone UTF-16 surrogate) gives U+FFFD;
//  - string sorting and tojson(sort_keys=true) compare UTF-8 bytes (the reference compares
//    UTF-16 units / uses localeCompare); printing a function gives a placeholder text;
//  - which of caller/varargs/kwargs a macro uses is found by a simpler scan of its body.
//
// Thread safety: a Template is immutable after construction; render() may run concurrently.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace lowbit::jinja {

struct Program;

struct RenderOptions {
  size_t max_output_bytes = size_t(16) << 20;    // rendered text (also the cap of any one string)
  uint64_t max_loop_iterations = 10'000'000;     // for-loop iterations + range()/list items built
  uint64_t max_steps = 100'000'000;              // evaluated syntax nodes
  int max_depth = 500;                           // nested evaluation (macro recursion included)
  std::optional<std::time_t> now;                // clock of strftime_now(); unset: the real time
};

class Template {
 public:
  // Parses once. Throws lowbit::Error("jinja", "line N: ...") on a syntax error.
  explicit Template(std::string_view source);
  ~Template();
  Template(const Template&) = default;
  Template& operator=(const Template&) = default;
  Template(Template&&) noexcept = default;
  Template& operator=(Template&&) noexcept = default;

  // Renders with the given variables (a JSON object; object key order is kept, as JavaScript
  // keeps it). The globals true/false/none/True/False/None, namespace, range, raise_exception
  // and strftime_now are predefined; a context key with one of those names is an error, as in
  // the reference. Throws lowbit::Error("jinja", ...) on any runtime error.
  std::string render(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;

 private:
  std::shared_ptr<const Program> program_;
};

}  // namespace lowbit::jinja
