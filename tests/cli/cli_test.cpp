// End-to-end tests of the `lowbit` binary: exact greedy text, JSON outputs, and the
// bad-input contract (one stderr line naming the problem, non-zero exit, never a crash).
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "testutil.h"

namespace lowbit {
namespace {

using json = nlohmann::json;
using test::run_command;

std::string bin() { return test::lowbit_bin(); }
std::string q(const std::string& s) { return "'" + s + "'"; }

// llama2.c's greedy sample for stories260K from BOS (80 tokens), as printed by run.c.
const char* kStoriesGreedy =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n"
    "Lily's mom said, \"Lily, let's go to";

void expect_one_line_error(const test::CommandResult& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.exit_code, 128) << "crashed (signal)";
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

TEST(Cli, Stories260KGreedyFromBosMatchesLlama2c) {
  for (const char* model : {"models/stories260K/stories260K.bin", "models/stories260K-gguf/stories260K.gguf"}) {
    auto r = run_command(bin() + " generate --model " + q(test::shared_path(model)) +
                         " --prompt '' -n 80 --temp 0 --ignore-eos");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, std::string(kStoriesGreedy) + "\n") << model;
  }
}

TEST(Cli, GenerateJsonMatchesGoldenGreedyIds) {
  const json g = json::parse(test::read_file(test::shared_path("models/ref-m/golden.json")));
  const auto& p = g["prompts"][0];
  auto r = run_command(bin() + " generate --model " + q(test::shared_path("models/ref-m")) +
                       " --prompt " + q(p["text"]) + " -n 32 --temp 0 --ignore-eos --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json out = json::parse(r.out);
  EXPECT_EQ(out["prompt_ids"], p["token_ids"]);
  EXPECT_EQ(out["ids"], p["greedy_ids"]);
  // golden greedy_text is decode(greedy_ids), which drops the first token's dummy-prefix space;
  // the CLI continues the prompt, so it keeps it.
  EXPECT_EQ(out["text"], " " + p["greedy_text"].get<std::string>());
}

TEST(Cli, PerplexityJsonHasTheDocumentedKeys) {
  auto r = run_command(bin() + " perplexity --model " + q(test::shared_path("models/ref-s")) + " --file " +
                       q(test::shared_path("data/wikitext-2-raw/wiki.test.raw")) +
                       " --ctx 128 --max-tokens 2048 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  for (const char* k : {"ppl", "ppl_stderr", "tokens", "tok_per_s"}) EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["tokens"], 16 * 127);
  EXPECT_GT(j["ppl"].get<double>(), 20.0);
  EXPECT_LT(j["ppl"].get<double>(), 1000.0);
}

TEST(Cli, InfoAndBenchJson) {
  auto r = run_command(bin() + " info --model " + q(test::shared_path("models/ref-m")) + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json info = json::parse(r.out);
  EXPECT_EQ(info["parameters"], 6524160);
  EXPECT_EQ(info["config"]["layers"], 6);
  EXPECT_EQ(info["tensors"].size(), 57u);
  r = run_command(bin() + " bench --model " + q(test::shared_path("models/ref-s")) + " -p 16 -n 8 -r 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json b = json::parse(r.out);
  EXPECT_GT(b["prefill_tok_s"].get<double>(), 0.0);
  EXPECT_GT(b["decode_tok_s"].get<double>(), 0.0);
}

TEST(Cli, BadInputGivesOneLineAndNonZeroExit) {
  const std::string dir = test::temp_dir();
  expect_one_line_error(run_command(bin() + " info --model /no/such/model"), "/no/such/model");
  test::write_file(dir + "/bad.gguf", "GGUF\x03\x00\x00\x00garbage");
  expect_one_line_error(run_command(bin() + " info --model " + dir + "/bad.gguf"), "bad.gguf");
  test::write_file(dir + "/bad.bin", std::string(12, '\x01'));
  expect_one_line_error(run_command(bin() + " generate --model " + dir + "/bad.bin -p hi"), "bad.bin");
  expect_one_line_error(run_command(bin() + " generate --model " + q(test::shared_path("models/ref-s")) +
                                    " -p hi --top-p 7"),
                        "top-p");
  expect_one_line_error(run_command(bin() + " perplexity --model " + q(test::shared_path("models/ref-s")) +
                                    " --file /no/such/text"),
                        "/no/such/text");
  expect_one_line_error(run_command(bin() + " generate --model x --no-such-flag"), "no-such-flag");
  expect_one_line_error(run_command(bin() + " frobnicate"), "frobnicate");
}

}  // namespace
}  // namespace lowbit
