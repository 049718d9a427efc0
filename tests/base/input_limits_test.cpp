// Guards against hostile input that would exhaust the stack or block forever (issue 14): JSON
// nesting depth, bounded regexes, and paths that are not regular files (a FIFO must not hang).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "base/bounded_regex.h"
#include "base/error.h"
#include "base/json_depth.h"
#include "base/mapped_file.h"
#include "testutil.h"

namespace lowbit {
namespace {

TEST(JsonDepth, CountsArraysAndObjectsButNotStrings) {
  EXPECT_EQ(json_depth("1"), 0);
  EXPECT_EQ(json_depth("[]"), 1);
  EXPECT_EQ(json_depth(R"({"a":[1,{"b":[]}]})"), 4);
  EXPECT_EQ(json_depth(R"(["[[[[", "\"[[[", {"x\\":"]]]]{"}])"), 2);  // brackets in strings
  EXPECT_EQ(json_depth("[[]][[[]]]"), 3);
  EXPECT_EQ(json_depth("]]][["), 2);  // malformed: the parser reports it later
}

TEST(JsonDepth, StopsEarlyAndThrowsPastTheLimit) {
  const std::string deep(10'000'000, '[');  // would take seconds to walk in full, none here
  EXPECT_EQ(json_depth(deep, 64), 65);
  std::string ok;
  for (int i = 0; i < kMaxJsonDepth; ++i) ok += '[';
  for (int i = 0; i < kMaxJsonDepth; ++i) ok += ']';
  EXPECT_NO_THROW(check_json_depth(ok, "test", "ok.json"));
  test::expect_error([&] { check_json_depth("[" + ok + "]", "test", "deep.json"); },
                     "deep.json: JSON nested deeper than 64 levels", "test");
}

TEST(BoundedRegex, CompilesShallowPatternsAndRefusesHostileOnes) {
  EXPECT_TRUE(std::regex_match("layers.3.down_proj", bounded_regex(R"(layers\.[0-9]+\.down_proj)", "t", "x")));
  std::string nested;
  for (int i = 0; i < 30000; ++i) nested += '(';
  nested += 'a';
  for (int i = 0; i < 30000; ++i) nested += ')';
  test::expect_error([&] { bounded_regex(nested, "recipe", "--tensor"); }, "regex longer than 512", "recipe");
  test::expect_error([&] { bounded_regex(std::string(40, '(') + std::string(40, ')'), "recipe", "--tensor"); },
                     "more than 32 groups", "recipe");
  test::expect_error([&] { bounded_regex("a[", "recipe", "--tensor 'a['"); }, "--tensor 'a[': bad regex", "recipe");
  // Shapes std::regex matches in exponential time (found by fuzz/recipe: a --tensor rule with
  // stacked '*'s hung on a 20-character tensor name).
  for (const char* p : {"a****x", "a+??", "(a+)+$", "(.*)*x", "(.|.)*x", "((a)*)*", "(x{2})+", "(?:a|b)+",
                        ".*.*.*.*.*x"})
    test::expect_error([&] { bounded_regex(p, "recipe", "--tensor"); }, "regex too costly to match", "recipe");
  for (const char* p : {"layers\\.[0-9]+\\.(q|k|v)_proj", "a+?b*?", "(ab)+c{1,3}", "[(*+]+x", "\\(+\\)*",
                        "(?:layers\\.)?[0-9]*", ".*(down|up)_proj$"})
    EXPECT_NO_THROW(bounded_regex(p, "recipe", "--tensor")) << p;
}

TEST(RegularFile, FifoAndDirectoryAreRefusedWithoutBlocking) {
  const std::string fifo = test::temp_dir() + "/model.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  test::expect_error([&] { read_text_file(fifo); }, fifo + ": not a regular file", "io");
  test::expect_error([&] { MappedFile m(fifo); }, fifo + ": not a regular file", "io");
  test::expect_error([&] { read_text_file(test::temp_dir()); }, "not a regular file", "io");
  EXPECT_NO_THROW(require_regular_file(test::temp_dir() + "/missing", "io"));  // left to open
}

}  // namespace
}  // namespace lowbit
