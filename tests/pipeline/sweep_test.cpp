// Sweep reports: the Pareto marking and the table/plot text.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "pipeline/sweep.h"

namespace lowbit {
namespace {

SweepRow row(const char* recipe, double bpw, double kld) {
  SweepRow r;
  r.recipe = recipe;
  r.bits_per_weight = r.bits_per_weight_all = bpw;
  r.kld_mean = kld;
  return r;
}

TEST(Sweep, MarksTheParetoFront) {
  std::vector<SweepRow> rows = {row("reference", 32, 0), row("a", 4.5, 0.01), row("b", 4.5, 0.02),
                                row("c", 3.5, 0.05), row("d", 3.6, 0.06), row("e", 2.5, 0.3)};
  mark_pareto(rows);
  std::vector<bool> front;
  for (const SweepRow& r : rows) front.push_back(r.pareto);
  // b: same bits as a, higher KLD; d: more bits and higher KLD than c.
  EXPECT_EQ(front, (std::vector<bool>{true, true, false, true, false, true}));
  // The front is over all weights: fewer bits in the linears do not count if the file is larger.
  rows[3].bits_per_weight = 2.0;
  rows[3].bits_per_weight_all = 4.6;
  mark_pareto(rows);
  EXPECT_FALSE(rows[3].pareto);
  EXPECT_TRUE(rows[4].pareto);
}

TEST(Sweep, ReportsListEveryRow) {
  std::vector<SweepRow> rows = {row("reference", 32, 0), row("gptq:int3:g128", 3.25, 0.02),
                                row("rtn:int3:g128", 3.25, 0.04)};
  mark_pareto(rows);
  const std::string md = sweep_markdown(rows, "t");
  EXPECT_NE(md.find("| gptq:int3:g128 | 3.250 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| rtn:int3:g128 | 3.250 |"), std::string::npos) << md;
  const auto j = nlohmann::json::parse(sweep_json(rows));
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[1]["recipe"], "gptq:int3:g128");
  EXPECT_TRUE(j[1]["pareto"].get<bool>());
  EXPECT_FALSE(j[2]["pareto"].get<bool>());
  for (const char* key : {"bits_per_weight", "file_bytes", "ppl", "kld_mean", "top1_agree", "quantize_seconds", "decode_tok_s"})
    EXPECT_TRUE(j[1].contains(key)) << key;
  const std::string gp = sweep_gnuplot_script(rows, "t", "/tmp/x.png");
  EXPECT_NE(gp.find("3.2500 0.02 \"gptq:int3:g128\""), std::string::npos) << gp;
  EXPECT_EQ(gp.find("reference"), std::string::npos) << "KLD 0 cannot go on a log axis";
}

}  // namespace
}  // namespace lowbit
