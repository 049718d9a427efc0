// `lowbit sweep` and `lowbit quantize` with calibrated recipes, end to end through the binary.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "testutil.h"

namespace lowbit {
namespace {

using test::run_command;

std::string q(const std::string& s) { return "'" + s + "'"; }

TEST(CliSweep, TabulatesRecipesAndPlots) {
  const std::string out = test::temp_dir() + "/sweep";
  auto r = run_command("LOWBIT_SHARED=" + q(test::shared_dir()) + " " + test::lowbit_bin() + " sweep -m " +
                       q(test::shared_path("models/ref-s")) + " --recipes rtn:int4:g128,gptq:int3:g64 -f " +
                       q(test::shared_path("data/wikitext-2-raw/wiki.test.raw")) +
                       " --max-tokens 2048 --calib " + q(test::shared_path("data/calibration/wiki.utf8")) +
                       " --calib-windows 8 --calib-len 64 --bench-tokens 4 --tasks arc_easy --task-limit 12 --json -o " +
                       q(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["recipe"], "reference");
  EXPECT_EQ(j[2]["recipe"], "gptq:int3:g64");
  EXPECT_GT(j[2]["kld_mean"].get<double>(), j[1]["kld_mean"].get<double>()) << "3 bits lose more than 4";
  EXPECT_LT(j[2]["bits_per_weight"].get<double>(), j[1]["bits_per_weight"].get<double>());
  for (const auto& row : j) {
    const double acc = row["tasks"]["arc_easy"]["acc_norm"].get<double>();
    EXPECT_GE(acc, 0.0);
    EXPECT_LE(acc, 1.0);
    EXPECT_GT(row["tasks"]["arc_easy"]["acc_norm_stderr"].get<double>(), 0.0);
  }
  EXPECT_NE(test::read_file(out + "/sweep.md").find("arc_easy acc_norm"), std::string::npos);
  for (const char* f : {"sweep.md", "sweep.json", "rtn_int4_g128.lowbit", "gptq_int3_g64.lowbit"})
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  if (run_command("command -v gnuplot").exit_code == 0) {
    EXPECT_TRUE(std::filesystem::exists(out + "/sweep.png"));
  }
}

// A RECIPE@BPW entry allocates bits to that size (over all weights) from one measurement kept in
// the output directory.
TEST(CliSweep, BudgetEntriesAllocateToTheirSize) {
  const std::string out = test::temp_dir() + "/sweep";
  auto r = run_command(test::lowbit_bin() + " sweep -m " + q(test::shared_path("models/ref-s")) +
                       " --recipes rtn:int4:g128@3.5,rtn:int4:g128@5 -f " +
                       q(test::shared_path("data/wikitext-2-raw/wiki.test.raw")) +
                       " --max-tokens 1024 --calib " + q(test::shared_path("data/calibration/wiki.utf8")) +
                       " --calib-windows 4 --calib-len 64 --bench-tokens 0 --json -o " + q(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[1]["recipe"], "rtn:int4:g128@3.5");
  EXPECT_LE(j[1]["bits_per_weight_all"].get<double>(), 3.5);
  EXPECT_GT(j[1]["bits_per_weight_all"].get<double>(), 3.0);  // the tokenizer (0.27 bpw) is not a tensor
  EXPECT_LE(j[2]["bits_per_weight_all"].get<double>(), 5.0);
  EXPECT_LT(j[2]["kld_mean"].get<double>(), j[1]["kld_mean"].get<double>());
  EXPECT_TRUE(std::filesystem::exists(out + "/measure_rtn_int4_g128.json"));
  EXPECT_TRUE(std::filesystem::exists(out + "/rtn_int4_g128_3.5.lowbit"));
  auto bad = run_command(test::lowbit_bin() + " sweep -m " + q(test::shared_path("models/ref-s")) +
                         " --recipes rtn:int4:g128@x -f " + q(test::shared_path("data/wikitext-2-raw/wiki.test.raw")) +
                         " -o " + q(out + "2"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("RECIPE@BITS"), std::string::npos) << bad.err;
}

TEST(CliSweep, BadRecipeFailsBeforeAnyWork) {
  const std::string out = test::temp_dir() + "/sweep-bad";
  auto r = run_command(test::lowbit_bin() + " sweep -m " + q(test::shared_path("models/ref-s")) +
                       " --recipes rtn:int4:g128,gptq:int9:g128 -f " +
                       q(test::shared_path("data/wikitext-2-raw/wiki.test.raw")) + " -o " + q(out));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("int9"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out + "/rtn_int4_g128.lowbit"));
  auto t = run_command(test::lowbit_bin() + " sweep -m " + q(test::shared_path("models/ref-s")) +
                       " --recipes rtn:int4:g128 --tasks hellaswag,piqa -f " +
                       q(test::shared_path("data/wikitext-2-raw/wiki.test.raw")) + " -o " + q(out));
  EXPECT_NE(t.exit_code, 0);
  EXPECT_NE(t.err.find("unknown task \"piqa\""), std::string::npos) << t.err;
  EXPECT_FALSE(std::filesystem::exists(out + "/rtn_int4_g128.lowbit"));
}

TEST(CliQuantize, CalibratedRecipeReportsCalibrationAndMemory) {
  const std::string out = test::temp_dir() + "/awq.lowbit";
  auto r = run_command(test::lowbit_bin() + " quantize -m " + q(test::shared_path("models/ref-s")) +
                       " -o " + q(out) + " -r awq:int4:g128 --calib " +
                       q(test::shared_path("data/calibration/wiki.utf8")) + " --calib-windows 4 --calib-len 64 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["calib_windows"], 4);
  EXPECT_EQ(j["calib_window_len"], 64);
  EXPECT_GT(j["peak_rss_bytes"].get<int64_t>(), 0);
  for (const auto& t : j["tensors"]) {
    const std::string name = t["name"];
    if (name.ends_with("_proj")) {
      EXPECT_GT(t["rel_output_error"].get<double>(), 0.0) << name;
    }
  }
  auto bad = run_command(test::lowbit_bin() + " quantize -m " + q(test::shared_path("models/ref-s")) + " -o " +
                         q(test::temp_dir() + "/x.lowbit") + " -r gptq:int4:g128 --calib /nonexistent");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("/nonexistent"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(test::temp_dir() + "/x.lowbit"));
}

}  // namespace
}  // namespace lowbit
