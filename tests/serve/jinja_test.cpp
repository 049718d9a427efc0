// The Jinja engine: feature snippets against goldens made by the reference renderer
// (@huggingface/jinja; see make_chat_goldens.mjs and data/jinja_cases.json), syntax errors,
// resource limits on hostile templates, and a mutation fuzz loop over the real chat templates.
#include "serve/jinja.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <filesystem>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/splitmix.h"
#include "testutil.h"

namespace lowbit::jinja {
namespace {

using nlohmann::ordered_json;

std::string render(const std::string& source, const ordered_json& ctx = ordered_json::object(),
                   const RenderOptions& opts = {}) {
  return Template(source).render(ctx, opts);
}

TEST(JinjaGoldens, EverySnippetMatchesTheReference) {
  const ordered_json g = ordered_json::parse(test::read_file(test::test_source_path("serve/data/jinja_goldens.json")));
  const ordered_json& cases = g.at("cases");
  ASSERT_GE(cases.size(), 70u);
  for (const ordered_json& c : cases) {
    const std::string name = c.at("name").get<std::string>();
    const std::string source = c.at("template").get<std::string>();
    if (c.contains("expected")) {
      try {
        EXPECT_EQ(render(source, c.at("context")), c.at("expected").get<std::string>()) << name << ": " << source;
      } catch (const Error& e) {
        ADD_FAILURE() << name << ": unexpected error " << e.what();
      }
    } else {
      test::expect_error([&] { render(source, c.at("context")); }, c.at("error").get<std::string>(), "jinja");
    }
  }
}

TEST(JinjaSyntax, MalformedTemplatesGiveOneLineErrorsWithTheLine) {
  struct Case {
    const char* source;
    const char* needle;
  };
  const Case cases[] = {
      {"{% if x %}\nnever closed", "line 1: unexpected end of template: '{% if %}' opened on line 1 is not closed"},
      {"a\n{% for m in ms %}{{ m }}", "'{% for %}' opened on line 2"},
      {"a\n\n{{ x ", "line 3"},
      {"{{ x }", "expected '}}'"},
      {"x\n{% endfor %}", "line 2: unexpected '{% endfor %}'"},
      {"{% frobnicate %}", "unknown statement 'frobnicate'"},
      {"a\nb\n{{ 'abc }}", "line 3: unterminated string literal"},
      {"{# never closed", "unterminated comment"},
      {"{{ 'a\\q' }}", "unexpected escaped character: q"},
      {"{{ x | }}", "expected an expression"},
      {"{{ 1 + }}", "expected an expression"},
      {"{% for in xs %}{% endfor %}", "expected 'in'"},
      {"{% set %}", "line 1"},
      {"{{ ! }}", "unexpected character '!'"},
      {"{{ x \xc3\xa9 }}", "unexpected character"},
      {"{% macro m(a=1, b) %}{% endmacro %}", "non-default argument follows default argument"},
      {"{% macro m(a, a) %}{% endmacro %}", "duplicate parameter name: a"},
      {"{{ f(a=1, 2) }}", "positional arguments must come before keyword arguments"},
      {"{% set 1 = 2 %}", "invalid target of 'set'"},
      {"{{ x[] }}", "expected an index or a slice"},
      {"{{ x[1:2:3:4] }}", "a slice takes at most 3 parts"},
      {"{% if %}{% endif %}", "expected an expression"},
      {"{% else %}", "unexpected '{% else %}'"},
      {"{{ {'a' 1} }}", "expected ':' between key and value"},
      {"{{ x.'a' }}", "expected a name after '.'"},
      {"{{ x | f(1).y }}", "after a filter call"},
      {"{{ '\\u12' }}", "invalid hexadecimal escape"},
  };
  for (const Case& c : cases) {
    try {
      Template t(c.source);
      ADD_FAILURE() << "no error for: " << c.source;
    } catch (const Error& e) {
      EXPECT_EQ(e.component(), "jinja");
      const std::string msg(e.message());
      EXPECT_NE(msg.find(c.needle), std::string::npos) << c.source << " -> " << msg;
      EXPECT_EQ(msg.rfind("line ", 0), 0u) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
}

TEST(JinjaSyntax, UnknownFilterIsARuntimeErrorWithLine) {
  test::expect_error([] { render("a\n{{ 'x' | nosuchfilter }}"); }, "line 2: Unknown StringValue filter: nosuchfilter", "jinja");
  test::expect_error([] { render("{{ 1 is nosuchtest }}"); }, "Unknown test: nosuchtest", "jinja");
}

TEST(JinjaLimits, DeepNestingIsAnErrorNotAStackOverflow) {
  const size_t n = 100000;
  const std::string parens = "{{ " + std::string(n, '(') + "1" + std::string(n, ')') + " }}";
  test::expect_error([&] { Template t(parens); }, "nesting deeper than", "jinja");
  test::expect_error([&] { Template t("{{ " + std::string(n, '[') + std::string(n, ']') + " }}"); }, "nesting deeper", "jinja");
  std::string nots = "{{ ";
  for (size_t i = 0; i < n; ++i) nots += "not ";
  test::expect_error([&] { Template t(nots + "x }}"); }, "nesting deeper", "jinja");
  std::string signs = "{{ x";
  for (size_t i = 0; i < n; ++i) signs += "- -";
  test::expect_error([&] { Template t(signs + "x }}"); }, "line 1", "jinja");
  std::string chain = "{{ 1";
  for (size_t i = 0; i < n; ++i) chain += " + 1";
  test::expect_error([&] { Template t(chain + " }}"); }, "syntax tree over", "jinja");
  std::string ifs;
  for (size_t i = 0; i < 10000; ++i) ifs += "{% if x %}";
  test::expect_error([&] { Template t(ifs); }, "nesting deeper", "jinja");
  std::string calls = "{{ f";
  for (size_t i = 0; i < n; ++i) calls += "()";
  test::expect_error([&] { Template t(calls + " }}"); }, "syntax tree over", "jinja");
}

TEST(JinjaLimits, ModerateNestingAndLongElifChainsWork) {
  EXPECT_EQ(render("{{ " + std::string(60, '(') + "7" + std::string(60, ')') + " }}"), "7");
  std::string chain = "{{ 0";
  for (int i = 0; i < 300; ++i) chain += " + 1";
  EXPECT_EQ(render(chain + " }}"), "300");
  std::string elifs = "{% if x == 0 %}zero";
  for (int i = 1; i < 400; ++i) elifs += "{% elif x == " + std::to_string(i) + " %}" + std::to_string(i);
  elifs += "{% else %}many{% endif %}";
  EXPECT_EQ(render(elifs, {{"x", 399}}), "399");
  EXPECT_EQ(render(elifs, {{"x", 1000}}), "many");
}

TEST(JinjaLimits, HugeRangesAndLoopsStopAtTheIterationLimit) {
  test::expect_error([] { render("{% for i in range(100000000000) %}{% endfor %}"); }, "exceeds the iteration limit", "jinja");
  test::expect_error([] { render("{{ range(0, 10 ** 300) | length }}"); }, "iteration limit", "jinja");
  RenderOptions small;
  small.max_loop_iterations = 100000;
  test::expect_error([&] { render("{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}", {}, small); },
                     "loop iterations", "jinja");
  EXPECT_EQ(RenderOptions{}.max_loop_iterations, 10'000'000u);
}

TEST(JinjaLimits, OutputAndStringSizesAreBounded) {
  RenderOptions small;
  small.max_output_bytes = 1000;
  test::expect_error([&] { render("{% for i in range(10000) %}xxxxxxxx{% endfor %}", {}, small); }, "output longer than 1000 bytes", "jinja");
  const std::string doubling =
      "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}";
  test::expect_error([&] { render(doubling); }, "string longer than", "jinja");
  const std::string list_doubling =
      "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}";
  test::expect_error([&] { render(list_doubling); }, "list longer than", "jinja");
  test::expect_error([] { render("{{ 'x' | indent(1000000000000) }}"); }, "indent width too large", "jinja");
  test::expect_error([] { render("{{ [[[[1]]]] | tojson(indent=100000000) }}"); }, "string longer than", "jinja");
  test::expect_error([] { Template t(std::string(5 << 20, 'x')); }, "template larger than", "jinja");
}

TEST(JinjaLimits, RecursionIsBounded) {
  test::expect_error([] { render("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}"); }, "recursion deeper than", "jinja");
  test::expect_error([] { render("{% macro r(n) %}{% for x in [1] %}{% if true %}{{ r(n) }}{% endif %}{% endfor %}{% endmacro %}{{ r(0) }}"); },
                     "recursion deeper than", "jinja");
  RenderOptions few_steps;
  few_steps.max_steps = 1000;
  test::expect_error([&] { render("{% for i in range(10000) %}{{ i }}{% endfor %}", {}, few_steps); }, "evaluation steps", "jinja");
}

TEST(JinjaLimits, DeepAndCyclicValuesAreSafe) {
  test::expect_error(
      [] { render("{% set ns = namespace(v=[]) %}{% for i in range(100000) %}{% set ns.v = [ns.v] %}{% endfor %}{{ ns.v | length }}"); },
      "value nesting deeper than", "jinja");
  // A 50000-long chain of namespaces whose stored depths go stale: building, rendering and
  // destroying it must not recurse along the chain.
  const std::string chain =
      "{% set ns = namespace(tail=namespace()) %}{% set root = ns.tail %}"
      "{% for i in range(50000) %}{% set t = namespace() %}{% set ns.tail.n = t %}{% set ns.tail = t %}{% endfor %}";
  EXPECT_EQ(render(chain + "done"), "done");
  test::expect_error([&] { render(chain + "{{ root }}"); }, "value nesting deeper than", "jinja");
  test::expect_error([&] { render(chain + "{{ [root] == '' }}"); }, "value nesting deeper than", "jinja");
  test::expect_error([] { render("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns | tojson }}"); }, "nesting deeper", "jinja");
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me.me is defined }}"), "true");
  // Deep JSON input is rejected, not recursed into without bound.
  ordered_json deep = 1;
  for (int i = 0; i < 5000; ++i) deep = ordered_json::array({deep});
  test::expect_error([&] { render("{{ x }}", {{"x", deep}}); }, "value nesting deeper than", "jinja");
}

TEST(JinjaRuntime, BreakOutsideALoopAndContextClashesAreErrors) {
  test::expect_error([] { render("a\n{% break %}"); }, "line 2: 'break' outside of a loop", "jinja");
  test::expect_error([] { render("{{ 1 }}", {{"range", 1}}); }, "Variable already declared: range", "jinja");
  test::expect_error([] { render("{{ x }}", ordered_json::array()); }, "must be a JSON object", "jinja");
}

TEST(JinjaRuntime, RaiseExceptionMessageIsExact) {
  try {
    render("a\n{{ raise_exception('Bad role: ' ~ r) }}", {{"r", "tool"}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.message()), "Bad role: tool");
  }
}

TEST(JinjaRuntime, StrftimeNowUsesTheInjectedClock) {
  RenderOptions opts;
  opts.now = 1733541600;  // 2024-12-07 (UTC); expected text is built with the same local time
  std::tm tm{};
  localtime_r(&*opts.now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%d %b %Y %H:%M %B %m %%Q", &tm);
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y %H:%M %B %m %%Q') }}", {}, opts), buf);
}

TEST(JinjaRuntime, ExtensionsBeyondTheReference) {
  EXPECT_EQ(render("{{ [1, 2] | count }}{{ 'abc' | count }}{{ u | d('x') }}{{ u | default }}."), "23x.");
  EXPECT_EQ(render("{{ 2.5 | round }} {{ 3.14159 | round(2) }} {{ 7 | round }}"), "2.0 3.14 7.0");
  EXPECT_EQ(render("{{ [1, 2, 3, 4] | select('odd') | list }}{{ ['a', 'b'] | reject('equalto', 'a') | list }}"), "[1, 3][\"b\"]");
  EXPECT_EQ(render("{{ ['a', 'b'] | map('upper') | join }}{{ 9 is divisibleby(3) }}{{ 'x'.upper() is ne('x') }}"), "ABtruetrue");
}

TEST(JinjaRuntime, ConcurrentRendersOfOneTemplateAgree) {
  const Template t("{% for m in ms %}{{ loop.index }}:{{ m | upper }}{% if not loop.last %},{% endif %}{% endfor %}");
  const ordered_json ctx = {{"ms", {"a", "b", "c"}}};
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 200; ++k) good += t.render(ctx) == "1:A,2:B,3:C";
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(good.load(), 800);
  const Template copy = t;
  EXPECT_EQ(copy.render(ctx), "1:A,2:B,3:C");
}

// Mutations of the real chat templates must render or throw lowbit::Error, never crash or hang.
TEST(JinjaFuzz, MutatedChatTemplatesRenderOrThrow) {
  namespace fs = std::filesystem;
  const ordered_json ctx = ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi {{x}}"},
                 {"role": "assistant", "content": "yo", "tool_calls": [{"id": "abcdefghi", "type": "function",
                  "function": {"name": "f", "arguments": {"a": 1}}}]},
                 {"role": "tool", "content": "r", "tool_call_id": "abcdefghi"}, {"role": "user", "content": ""}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})");
  const std::string pieces[] = {"{{", "}}", "{%", "%}", "{#", "#}", "-", "(", ")", "[", "]", "'", "\"", "|", ".", ",",
                                " if ", " for ", "endif", "endfor", " not ", "~", "*", "\\", "\n", "\xc3", "loop", "ns"};
  RenderOptions opts;
  opts.max_loop_iterations = 100000;
  opts.max_steps = 200000;
  uint64_t counter = 20251207;
  auto next = [&] { return splitmix64(counter++); };
  int rendered = 0, failed = 0;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(test::test_source_path("serve/data/chat_templates"))) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 10u);
  for (const fs::path& file : files) {
    const std::string original = test::read_file(file.string());
    for (int iter = 0; iter < 120; ++iter) {
      std::string s = original;
      const int edits = 1 + static_cast<int>(next() % 4);
      for (int e = 0; e < edits && !s.empty(); ++e) {
        const size_t pos = next() % s.size();
        switch (next() % 4) {
          case 0: s.erase(pos, 1 + next() % 8); break;
          case 1: s.insert(pos, pieces[next() % std::size(pieces)]); break;
          case 2: s.insert(pos, s.substr(next() % s.size(), next() % 40)); break;
          default: std::swap(s[pos], s[next() % s.size()]); break;
        }
      }
      try {
        Template t(s);
        t.render(ctx, opts);
        ++rendered;
      } catch (const Error& e) {
        EXPECT_EQ(e.component(), "jinja");
        ++failed;
      }
    }
  }
  EXPECT_GT(rendered, 0);
  EXPECT_GT(failed, 0);
}

}  // namespace
}  // namespace lowbit::jinja
