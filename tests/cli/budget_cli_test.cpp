// `lowbit quantize --target-bpw / --target-size` and `:rot` through the binary: the file lands
// within the target, the measurement is saved and reused, and bad combinations give one line.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "testutil.h"

namespace lowbit {
namespace {

using test::run_command;

std::string q(const std::string& s) { return "'" + s + "'"; }

std::string quantize_cmd(const std::string& out, const std::string& extra) {
  return test::lowbit_bin() + " quantize -m " + q(test::shared_path("models/ref-s")) + " -o " + q(out) + " --calib " +
         q(test::shared_path("data/calibration/wiki.utf8")) + " --calib-windows 4 --calib-len 64 " + extra;
}

const char* kFewCandidates =
    " --candidates rtn:int2:g64:asym:clip,rtn:int4:g128:clip,rtn:int8:g128:clip"
    " --embed-candidates rtn:int4:g128:clip,f16 --kld-windows 2";

TEST(CliBudget, TargetBpwFileWithinTargetAndMeasurementReused) {
  const std::string dir = test::temp_dir();
  auto r = run_command(quantize_cmd(dir + "/a.lowbit", std::string("-r rtn:int4:g128:rot --target-bpw 3.5 --json") +
                                                           kFewCandidates + " --measurement " + q(dir + "/m.json")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_LE(j["file_bits_per_weight"].get<double>(), 3.5);
  EXPECT_GT(j["file_bits_per_weight"].get<double>(), 3.3);
  EXPECT_GT(j["predicted_kld"].get<double>(), 0.0);
  EXPECT_EQ(j["recipe"], "rtn:int4:g128:rot");
  const auto info = nlohmann::json::parse(run_command(test::lowbit_bin() + " info --json --model " + q(dir + "/a.lowbit")).out);
  EXPECT_EQ(info["rotation"]["kind"], "hadamard");
  EXPECT_EQ(info["rotation"]["residual"], 128);
  ASSERT_TRUE(std::filesystem::exists(dir + "/m.json"));
  const auto m = nlohmann::json::parse(test::read_file(dir + "/m.json"));
  EXPECT_EQ(m["lowbit_measurement"], 1);
  EXPECT_EQ(m["tensors"].size(), 30u);  // embed_tokens, 4 layers x 7, lm_head

  // Reused: same allocation at the same target, reported on stderr.
  r = run_command(quantize_cmd(dir + "/b.lowbit", std::string("-r rtn:int4:g128:rot --target-bpw 3.5 --json") +
                                                      kFewCandidates + " --measurement " + q(dir + "/m.json")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("reusing the measurement"), std::string::npos) << r.err;
  EXPECT_EQ(test::read_file(dir + "/a.lowbit"), test::read_file(dir + "/b.lowbit"));

  // Another recipe does not reuse it silently.
  r = run_command(quantize_cmd(dir + "/c.lowbit", std::string("-r rtn:int4:g128 --target-bpw 3.5") + kFewCandidates +
                                                      " --measurement " + q(dir + "/m.json")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("measure again"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/c.lowbit"));
  // So does another calibration setting.
  r = run_command(quantize_cmd(dir + "/d.lowbit", std::string("-r rtn:int4:g128:rot --target-bpw 3.5 --kld-windows 3") +
                                                      " --candidates rtn:int2:g64:asym:clip,rtn:int4:g128:clip,rtn:int8:g128:clip"
                                                      " --embed-candidates rtn:int4:g128:clip,f16 --measurement " +
                                                      q(dir + "/m.json")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("calibration setting"), std::string::npos) << r.err;
}

TEST(CliBudget, BadCombinationsGiveOneLine) {
  const std::string dir = test::temp_dir();
  struct Case {
    std::string args, needle;
  };
  const Case cases[] = {
      {"--target-bpw 3 --target-size 1M", "one of --target-bpw and --target-size"},
      {"--target-bpw 3 --tensor lm_head=f16", "cannot be combined"},
      {"--target-size 10K", "leaves nothing for the weights"},
      {"--target-size 300K" + std::string(kFewCandidates), "below the"},
      {"--target-size lots", "--target-size 'lots'"},
      {"--target-bpw 3 --embed-candidates gptq:int4:g128", "embeddings take rtn"},
      {"--target-bpw 3 --candidates f16", "none quantizes"},
      {"-r rtn:int4:g128 --tensor lm_head=f16:rot", "whole model"},
  };
  for (const Case& c : cases) {
    const auto r = run_command(quantize_cmd(dir + "/x.lowbit", c.args));
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  test::write_file(dir + "/bad.json", "{\"lowbit_measurement\": 1, \"model\": 3}");
  const auto r = run_command(quantize_cmd(dir + "/x.lowbit", "--target-bpw 3 --measurement " + q(dir + "/bad.json")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("bad.json: malformed measurement"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.lowbit"));
}

TEST(CliBudget, GgufExportToATargetAndItsRefusals) {
  const std::string dir = test::temp_dir();
  const std::string base = test::lowbit_bin() + " export -m " + q(test::shared_path("models/ref-s")) + " --calib " +
                           q(test::shared_path("data/calibration/wiki.utf8")) + " --calib-windows 4 --calib-len 64 ";
  auto r = run_command(base + "-o " + q(dir + "/a.gguf") + " --target-bpw 5 --candidates Q4_0,Q8_0 " +
                       "--embed-candidates Q4_0,Q8_0 --kld-windows 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("bit allocation:"), std::string::npos) << r.out;
  // 5 bits over ref-s's 1,787,008 weights (embeddings, blocks, lm_head, norms): 1,116,880 bytes.
  EXPECT_LE(std::filesystem::file_size(dir + "/a.gguf"), 1116880u);
  EXPECT_GT(std::filesystem::file_size(dir + "/a.gguf"), 1116880u * 95 / 100);
  r = run_command(test::lowbit_bin() + " info --model " + q(dir + "/a.gguf"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  struct Case {
    std::string args, needle;
  };
  const Case cases[] = {
      {"--type Q4_0 --target-bpw 4", "cannot be combined"},
      {"--target-bpw 4 --candidates Q4_0,Q7_7", "unknown GGUF candidate type 'Q7_7'"},
      {"--format gptq --target-bpw 4", "apply to --format gguf only"},
  };
  for (const Case& c : cases) {
    const auto e = run_command(base + "-o " + q(dir + "/x") + " " + c.args);
    EXPECT_NE(e.exit_code, 0) << c.args;
    EXPECT_NE(e.err.find(c.needle), std::string::npos) << c.args << ": " << e.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/x"));
}

}  // namespace
}  // namespace lowbit
