// `lowbit tasks` end to end through the binary: the shared task files, --reference, and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "testutil.h"

namespace lowbit {
namespace {

using test::run_command;

std::string q(const std::string& s) { return "'" + s + "'"; }

std::string tasks_cmd(const std::string& args) {
  return "LOWBIT_SHARED=" + q(test::shared_dir()) + " " + test::lowbit_bin() + " tasks -m " +
         q(test::shared_path("models/ref-s")) + " " + args;
}

TEST(CliTasks, EveryTaskBesideItsReference) {
  auto r = run_command(tasks_cmd("--task all --limit 6 --json -r " + q(test::shared_path("models/ref-s"))));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["protocol"], "lm-eval");
  ASSERT_EQ(j["tasks"].size(), 4u);
  for (const auto& t : j["tasks"]) {
    EXPECT_EQ(t["docs"], 6) << t["task"];
    for (const char* m : {"acc", "acc_norm", "acc_tok"}) {
      const double v = t["model"][m].get<double>();
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, 1.0);
      EXPECT_EQ(t["reference"][m], t["model"][m]) << "the same model scores the same";
      EXPECT_EQ(t["agree"][m], 1.0);
    }
  }
  EXPECT_EQ(j["tasks"][3]["task"], "mmlu");
  EXPECT_GT(j["tasks"][3]["truncated"].get<int>(), 0) << "5-shot MMLU prompts pass ref-s's 256-token context";
}

TEST(CliTasks, TableAndLlamaCppProtocol) {
  auto r = run_command(tasks_cmd("--task hellaswag --limit 4 --protocol llama.cpp --kv-type q8"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("protocol llama.cpp"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("acc_tok"), std::string::npos) << r.out;
}

TEST(CliTasks, BadInputIsOneLineAndNonZero) {
  const std::string dir = test::temp_dir();
  test::write_file(dir + "/bad.txt", "context\n7\na\nb\nc\nd\n");
  const std::pair<std::string, std::string> cases[] = {
      {"--task winogrande", "unknown task \"winogrande\""},
      {"--task all -f " + q(dir + "/bad.txt"), "--file needs exactly one --task"},
      {"--task hellaswag -f " + q(dir + "/bad.txt"), "bad.txt task 1: gold index line must be 0..3"},
      {"--task arc_easy -f " + q(dir + "/missing.jsonl"), "missing.jsonl"},
      {"--task hellaswag --limit 0", "--limit"},
      {"--task hellaswag --protocol harness", "--protocol"},
  };
  for (const auto& [args, needle] : cases) {
    auto r = run_command(tasks_cmd(args));
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << ": " << r.err;
    EXPECT_LE(std::count(r.err.begin(), r.err.end(), '\n'), 2) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

}  // namespace
}  // namespace lowbit
