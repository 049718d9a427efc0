// End-to-end tests of the `lowbit` binary: exact greedy text, JSON outputs, and the
// bad-input contract (one stderr line naming the problem, non-zero exit, never a crash).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
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
  std::string expected = p["greedy_text"].get<std::string>();
  expected.insert(0, 1, ' ');  // (not " " + ...: GCC 12 warns -Wrestrict on that here)
  EXPECT_EQ(out["text"], expected);
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

// The first `bytes` of wikitext-2 test in a temporary file (the whole is slow to tokenize).
std::string wikitext_head(size_t bytes) {
  const std::string path = test::temp_dir() + "/head.txt";
  test::write_file(
      path,
      test::read_file(test::shared_path("data/wikitext-2-raw/wiki.test.raw")).substr(0, bytes));
  return path;
}

TEST(Cli, EvalComparesAQuantizedModelWithItsReference) {
  const std::string ref = q(test::shared_path("models/ref-s"));
  const std::string text = wikitext_head(40000);
  const std::string qm = test::temp_dir() + "/s4.lowbit";
  auto r =
      run_command(bin() + " quantize --model " + ref + " --out " + qm + " --recipe rtn:int4:g128");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_command(bin() + " eval --model " + qm + " --reference " + ref + " --file " + text +
                  " --ctx 128 --max-tokens 2048 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  for (const char* k : {"ppl", "ppl_stderr", "ref_ppl", "ref_ppl_stderr", "delta_ppl",
                        "ln_ratio_mean", "kld_mean", "kld_stderr", "kld_median", "kld_p90",
                        "kld_p99", "kld_max", "top1_agree", "tokens", "windows", "seconds"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["tokens"], 16 * 127);
  EXPECT_EQ(j["windows"], 16);
  EXPECT_NEAR(j["delta_ppl"].get<double>(), j["ppl"].get<double>() - j["ref_ppl"].get<double>(),
              1e-9);
  // int4 on ref-s: KLD mean ≈ 0.009 and top-1 ≈ 0.89 on 16k tokens (tests/eval/compare_test.cpp).
  EXPECT_GT(j["kld_mean"].get<double>(), 0.003);
  EXPECT_LT(j["kld_mean"].get<double>(), 0.03);
  EXPECT_GE(j["kld_p99"].get<double>(), j["kld_mean"].get<double>());
  EXPECT_GE(j["kld_max"].get<double>(), j["kld_p99"].get<double>());
  EXPECT_GT(j["top1_agree"].get<double>(), 0.8);
  EXPECT_LT(j["top1_agree"].get<double>(), 0.97);
  // The reference's ppl is what `perplexity` prints for it.
  r = run_command(bin() + " perplexity --model " + ref + " --file " + text +
                  " --ctx 128 --max-tokens 2048 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NEAR(j["ref_ppl"].get<double>(), json::parse(r.out)["ppl"].get<double>(), 1e-9);
  // A model against itself: no divergence; the human table names its rows.
  r = run_command(bin() + " eval --model " + ref + " --reference " + ref + " --file " + text +
                  " --ctx 128 --max-tokens 512 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json self = json::parse(r.out);
  EXPECT_EQ(self["kld_max"].get<double>(), 0.0);
  EXPECT_EQ(self["top1_agree"].get<double>(), 1.0);
  EXPECT_EQ(self["delta_ppl"].get<double>(), 0.0);
  r = run_command(bin() + " eval -m " + qm + " -r " + ref + " -f " + text +
                  " -c 128 --max-tokens 512");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* row : {"ppl", "delta ppl", "KLD mean", "KLD p99", "KLD max", "top-1 agree"})
    EXPECT_NE(r.out.find(row), std::string::npos) << row << "\n" << r.out;
}

TEST(Cli, EvalBadInputGivesOneLine) {
  const std::string ref = q(test::shared_path("models/ref-s"));
  const std::string text = wikitext_head(4000);
  const std::string eval = bin() + " eval --model " + ref + " --reference ";
  expect_one_line_error(run_command(eval + "/no/such/model --file " + text), "/no/such/model");
  expect_one_line_error(run_command(eval + ref + " --file /no/such/text"), "/no/such/text");
  expect_one_line_error(run_command(eval + ref + " --file " + text + " --ctx 1"), "--ctx");
  expect_one_line_error(run_command(eval + ref + " --file " + text + " --ctx 128 --max-tokens 100"),
                        "fewer than --ctx");
  expect_one_line_error(run_command(eval + ref + " --file " + text + " --ctx 128 --stride 200"),
                        "--stride");
  expect_one_line_error(
      run_command(eval + q(test::shared_path("models/stories260K/stories260K.bin")) + " --file " +
                  text + " --ctx 128"),
      "vocabulary");
  expect_one_line_error(run_command(bin() + " eval --model " + ref + " --file " + text),
                        "--reference");
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

TEST(Cli, QuantizeWritesARunnableLowbitFile) {
  const std::string out = test::temp_dir() + "/s.lowbit";
  auto r = run_command(bin() + " quantize --model " + q(test::shared_path("models/ref-s")) + " --out " + out +
                       " --recipe rtn:int4:g64:clip --tensor 'layers\\.0\\..*=rtn:int8:g32' --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["recipe"], "rtn:int4:g64:clip");
  // ref-s linear weights, in bytes: layer 0 at int8:g32 (184320 weights, 8.5 bits each); layers
  // 1-3 at int4:g64: 139264 weights in rows of 128 whose groups divide evenly (4.25 bits)
  // plus down_proj [128, 352], whose rows hold 5 groups of 64 and a short one of 32:
  // 128 x (176 code bytes + 6 fp16 scales) = 24064 bytes; lm_head [4096, 128] at the default
  // int6:g128 (two bits above the blocks): 4096 x (96 + 2) bytes.
  const double bytes = 184320 * 8.5 / 8 + 3 * (139264 * 4.25 / 8 + 24064) + 4096 * 98;
  const double expect = 8 * bytes / (4 * 184320 + 524288);
  EXPECT_NEAR(j["linear_bits_per_weight"].get<double>(), expect, 1e-9);
  EXPECT_GT(j["bits_per_weight"].get<double>(), expect);  // int6:g64 embeddings and f32 norms on top
  int overridden = 0;
  for (const auto& t : j["tensors"]) {
    if (t["name"] == "layers.0.q_proj") {
      EXPECT_EQ(t["format"], "int8:g32");
    }
    if (t["name"] == "layers.1.q_proj") {
      EXPECT_EQ(t["format"], "int4:g64");
    }
    overridden += t["format"] == "int8:g32";
  }
  EXPECT_EQ(overridden, 7);
  r = run_command(bin() + " generate --model " + out + " --prompt 'Once upon a time' -n 8 --temp 0");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  r = run_command(bin() + " info --model " + out + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["format"], "lowbit");
}

TEST(Cli, QuantizeBadRecipeLeavesNoFile) {
  const std::string dir = test::temp_dir();
  expect_one_line_error(run_command(bin() + " quantize --model " + q(test::shared_path("models/ref-s")) +
                                    " --out " + dir + "/x.lowbit --recipe rtn:int9:g128"),
                        "int9");
  expect_one_line_error(run_command(bin() + " quantize --model " + q(test::shared_path("models/ref-s")) +
                                    " --out " + dir + "/x.lowbit --tensor 'lm_head'"),
                        "REGEX=RECIPE");
  EXPECT_EQ(run_command("ls -A " + dir).out, "");
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

// Issue 14's hostile inputs: each used to crash, hang or print garbage with exit 0.
TEST(Cli, HostileSizesAndFilesAreRefusedOrBounded) {
  const std::string dir = test::temp_dir();
  const std::string stories = q(test::shared_path("models/stories260K/stories260K.bin"));
  // -n far beyond the context: generation stops at the context (512 tokens) and says so.
  const test::CommandResult g = run_command(bin() + " generate --model " + stories +
                                            " -p Once -n 4611686018427387904 --ignore-eos --temp 0");
  EXPECT_EQ(g.exit_code, 0) << g.err;
  EXPECT_NE(g.err.find("stopped at the model's context of 512 tokens"), std::string::npos) << g.err;
  expect_one_line_error(run_command(bin() + " bench --model " + stories + " -p 500 -n 4611686018427387904"),
                        "exceed the model's context of 512");
  // A prompt longer than the context is refused up front (its prefill would be quadratic).
  std::string longp;
  for (int i = 0; i < 600; ++i) longp += "the cat ";
  expect_one_line_error(run_command(bin() + " generate --model " + stories + " -p " + q(longp)),
                        "more than the model's context of 512");
  // A FIFO as the model: refused at once instead of blocking on open.
  ASSERT_EQ(run_command("mkfifo " + dir + "/m.fifo").exit_code, 0);
  expect_one_line_error(run_command("timeout 20 " + bin() + " info --model " + dir + "/m.fifo"),
                        "not a regular file");
  // A file size limit hit while writing: an error, and neither the output nor a temp file.
  expect_one_line_error(run_command("bash -c " + q("ulimit -f 50; exec " + bin() + " quantize --model " +
                                                   test::shared_path("models/stories260K/stories260K.bin") +
                                                   " -r rtn:int8:g32 -o " + dir + "/u.lowbit")),
                        "u.lowbit");
  for (const auto& e : std::filesystem::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().rfind("u.lowbit", 0), std::string::npos) << e.path();
  // Out-of-range numbers: a short message, not the largest double in 300 digits.
  const test::CommandResult neg = run_command(bin() + " generate --model " + stories + " -n -5");
  expect_one_line_error(neg, "--n-predict: must be >= 0, got -5");
  EXPECT_LT(neg.err.size(), 120u) << neg.err;
  expect_one_line_error(run_command(bin() + " generate --model " + stories + " --temp nan"), "not a finite number");
  // A --tensor regex of 30,000 nested groups (std::regex recursion) is refused.
  const std::string nested = std::string(30000, '(') + "lm_head" + std::string(30000, ')');
  expect_one_line_error(run_command(bin() + " quantize --model " + stories + " -r rtn:int4:g32 -o " + dir +
                                    "/n.lowbit --tensor " + q(nested + "=f16")),
                        "regex longer than 512");
}

}  // namespace
}  // namespace lowbit
