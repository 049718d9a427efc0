// `lowbit sweep`: quantize one model with several recipes and measure each the way users choose
// quants: size, bits/weight, perplexity, KL-divergence and top-1 agreement against the original
// (eval/compare.h), quantization time and decode speed (eval/bench.h), and optionally zero-shot
// task accuracy (eval/task_score.h: acc_norm, lm-eval's protocol).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pipeline/quantize.h"

namespace lowbit {

struct SweepRow {
  std::string recipe;            // "reference" for the original model's row
  double bits_per_weight = 0;    // linear layers (the blocks' linears + lm_head)
  double bits_per_weight_all = 0;
  int64_t file_bytes = 0;
  double ppl = 0, ppl_stderr = 0, delta_ppl = 0;
  double kld_mean = 0, kld_p99 = 0, top1_agree = 1;
  double quantize_seconds = 0;
  double decode_tok_s = 0;
  bool pareto = false;           // no other row has both fewer bits/weight (all) and a lower KLD
  struct TaskScore {
    std::string task;
    double acc = 0, acc_norm = 0, acc_norm_stderr = 0;
  };
  std::vector<TaskScore> tasks;  // SweepOptions::tasks, in order
};

struct SweepOptions {
  // Recipes, or "RECIPE@BPW": the recipe's algorithm (and :rot) with bits allocated per tensor to
  // BPW bits per weight over the whole file (pipeline/bit_allocation.h; the measurement is made
  // once per recipe and kept in out_dir as measure_<recipe>.json).
  std::vector<std::string> recipes;
  std::string text_file;                 // evaluation text
  int64_t ctx = 256, stride = 0, max_tokens = 0;  // as `lowbit eval` (stride 0 = ctx)
  std::string out_dir;                   // .lowbit files and the reports go here
  QuantizeOptions quantize;              // calibration settings (recipe is set per row)
  int64_t bench_prompt = 64, bench_gen = 32, bench_reps = 2;
  std::vector<std::string> tasks;        // zero-shot tasks scored per row (eval/task_data.h names)
  int64_t task_limit = 0;                // documents per task (0 = all)
  std::function<void(const std::string& what)> progress;
};

// Runs every recipe in order (each .lowbit is kept in out_dir as <recipe with ':', '@' -> '_'>.lowbit)
// and returns the reference row first, then one row per recipe, with `pareto` marked.
std::vector<SweepRow> run_sweep(const std::string& model_path, const SweepOptions& opt);

// Marks the rows on the bits/weight-vs-KLD Pareto front (bits over all weights: a plan that
// spends fewer bits on the blocks but more on the embeddings is not cheaper).
void mark_pareto(std::vector<SweepRow>& rows);

// The reports: a markdown table, a JSON array, and a gnuplot script plotting bits/weight (all) vs KLD
// (log scale, Pareto front joined) into `png_path`.
std::string sweep_markdown(const std::vector<SweepRow>& rows, const std::string& title);
std::string sweep_json(const std::vector<SweepRow>& rows);
std::string sweep_gnuplot_script(const std::vector<SweepRow>& rows, const std::string& title,
                                 const std::string& png_path);

}  // namespace lowbit
