// `lowbit train` end to end through the binary: a ternary quantization-aware run writes a
// .lowbit that perplexity, generate and info read, with a held-out loss in its JSON summary; bad
// flags give one-line errors and leave no model behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/mapped_file.h"
#include "testutil.h"

namespace lowbit {
namespace {

using test::run_command;

std::string q(const std::string& s) { return "'" + s + "'"; }

std::string tok512() { return q(test::shared_path("models/stories260K/tok512.bin")) + " --vocab 512"; }

TEST(CliTrain, TernaryRunWritesAModelTheOtherCommandsRead) {
  const std::string dir = test::temp_dir();
  const std::string text = dir + "/train.txt", out = dir + "/out";
  test::write_file(text, read_text_file(test::shared_path("data/tinyshakespeare/input.txt")).substr(0, 40000));
  auto r = run_command(test::lowbit_bin() + " train --tokenizer " + tok512() + " -d " + q(text) + " -o " + q(out) +
                       " -w ternary:g32 --dim 32 --layers 2 --heads 2 -c 32 -b 4 --steps 40 --warmup 4 --lr 3e-3 "
                       "--log-every 20 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["weights"], "ternary:g32");
  EXPECT_EQ(j["config"]["vocab"], 512);
  EXPECT_EQ(j["config"]["hidden"], 96);  // 8/3 · 32 rounded up to 32
  EXPECT_EQ(j["steps"], 40);
  ASSERT_EQ(j["heldout"].size(), 2u);
  const double before = j["heldout"][0]["loss"], after = j["heldout"][1]["loss"];
  EXPECT_NEAR(before, std::log(512.0), 0.1);
  EXPECT_LT(after, before - 1.0);
  EXPECT_NE(r.err.find("step 20/40"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("step 40/40"), std::string::npos) << r.err;
  for (const char* f : {"model.lowbit", "model.safetensors", "config.json", "train_log.csv"})
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  auto info = run_command(test::lowbit_bin() + " info -m " + q(out + "/model.lowbit"));
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("rtn:ternary:g32"), std::string::npos) << info.out;
  auto ppl = run_command(test::lowbit_bin() + " perplexity --json -m " + q(out + "/model.lowbit") + " -f " + q(text) +
                         " -c 32 --max-tokens 2048");
  ASSERT_EQ(ppl.exit_code, 0) << ppl.err;
  EXPECT_LT(nlohmann::json::parse(ppl.out)["ppl"].get<double>(), 0.5 * std::exp(before));
  auto gen = run_command(test::lowbit_bin() + " generate -m " + q(out + "/model.lowbit") + " -p 'ROMEO:' -n 8");
  EXPECT_EQ(gen.exit_code, 0) << gen.err;
  // The HF copy (masters in F32) loads too, with the tokenizer named.
  auto hf = run_command(test::lowbit_bin() + " perplexity --json -m " + q(out) + " --tokenizer " +
                        q(test::shared_path("models/stories260K/tok512.bin")) + " -f " + q(text) +
                        " -c 32 --max-tokens 1024");
  EXPECT_EQ(hf.exit_code, 0) << hf.err;
}

TEST(CliTrain, StopAndResumeThroughTheBinary) {
  const std::string dir = test::temp_dir();
  const std::string text = dir + "/train.txt", out = dir + "/out";
  test::write_file(text, read_text_file(test::shared_path("data/tinyshakespeare/input.txt")).substr(0, 20000));
  const std::string cmd = test::lowbit_bin() + " train --tokenizer " + tok512() + " -d " + q(text) + " -o " + q(out) +
                          " --dim 32 --layers 1 --heads 2 -c 32 -b 4 --steps 12 --warmup 2";
  auto first = run_command(cmd + " --stop-after 5");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.out.find("stopped early"), std::string::npos) << first.out;
  EXPECT_FALSE(std::filesystem::exists(out + "/model.lowbit"));
  auto rest = run_command(cmd + " --resume --json");
  ASSERT_EQ(rest.exit_code, 0) << rest.err;
  const auto j = nlohmann::json::parse(rest.out);
  EXPECT_EQ(j["resumed_from"], 5);
  EXPECT_TRUE(j["finished"].get<bool>());
  EXPECT_TRUE(std::filesystem::exists(out + "/model.lowbit"));
  auto again = run_command(cmd + " --lr 1e-2 --resume");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("the checkpoint was made with lr"), std::string::npos) << again.err;
}

TEST(CliTrain, BadInputGivesOneLineErrors) {
  const std::string dir = test::temp_dir();
  const std::string text = dir + "/t.txt";
  test::write_file(text, read_text_file(test::shared_path("data/tinyshakespeare/input.txt")).substr(0, 8000));
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    auto r = run_command(test::lowbit_bin() + " train " + args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  };
  const std::string base = "--tokenizer " + tok512() + " -d " + q(text) + " --dim 32 --layers 1 -c 16 --steps 2";
  const std::string out = " -o " + q(dir + "/o") + " --heads 2";
  expect_error(base + out + " -w int9", "int9");
  expect_error(base + out + " -w bf16", "--weights bf16");
  expect_error(base + " -o " + q(dir + "/o") + " --heads 3", "multiple of --heads");
  expect_error(base + out + " --kv-heads 3", "multiple of --kv-heads");
  expect_error(base + out + " --steps 0", "--steps");
  expect_error(base + out + " --lr -1", "learning rate");
  expect_error(base + out + " --schedule warm", "schedule");
  expect_error(base + out + " --holdout 0", "held-out");
  expect_error(base + out + " --log-every 0", "--log-every");
  expect_error("--tokenizer " + q(test::shared_path("models/stories260K/tok512.bin")) + " -d " + q(text) + out,
               "tok512.bin");
  expect_error("--tokenizer " + tok512() + " -d " + q(dir + "/missing.txt") + out, "missing.txt");
  EXPECT_FALSE(std::filesystem::exists(dir + "/o/model.lowbit"));
}

}  // namespace
}  // namespace lowbit
