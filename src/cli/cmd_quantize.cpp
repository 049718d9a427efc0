#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <unistd.h>

#include "base/error.h"
#include "cli/commands.h"
#include "io/lowbit_file.h"
#include "model/loader.h"
#include "pipeline/bit_allocation.h"
#include "pipeline/calibration.h"
#include "pipeline/quantize.h"
#include "train/loftq.h"
#include "train/merge.h"
#include "train/peft.h"
#include "train/kd_tune.h"

namespace lowbit::cli {

namespace {

struct QuantizeArgs {
  std::string model, tokenizer, out;
  QuantizeOptions opt;
  bool json = false;
  int threads = 0;
  BudgetArgs budget;
  bool recipe_given = false;
  LoraArgs lora;  // merged into the float weights before quantizing
  std::string tune;  // "", "kd" or "kd-scales"
  KdTuneOptions tune_opt;
  int64_t tune_windows = 512;
  std::string loftq_dir;  // LoftQ: the adapter's directory
  LoraConfig loftq_lora;
  int64_t loftq_iters = 5;
};


// Measures (or reuses the measurement), allocates the budget and fills a.opt.assigned.
Allocation plan_to_budget(QuantizeArgs& a, const ModelSource& src, const Tokenizer& tok) {
  if (!a.opt.overrides.empty()) throw Error("quantize", "--tensor cannot be combined with --target-bpw/--target-size");
  const int64_t target = budget_target_bytes(a.budget, src.config, "quantize");
  MeasureOptions mo;
  mo.recipe = a.recipe_given ? a.opt.recipe : "gptq:int4:g128";
  mo.linear_candidates = split_list(a.budget.candidates);
  mo.embed_candidates = split_list(a.budget.embed_candidates);
  mo.calibration = a.opt.calibration;
  mo.progress = a.opt.progress;
  a.opt.recipe = mo.recipe;
  const Measurement m = budget_measurement(a.budget, mo, src, tok);
  const Allocation al = allocate_for_file(m, tok, target);
  for (const AllocationRow& r : al.rows) a.opt.assigned[r.name] = r.recipe;
  return al;
}

nlohmann::json report_json(const QuantizeReport& r, const std::string& out) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const TensorReport& t : r.tensors)
    tensors.push_back({{"name", t.name}, {"recipe", t.recipe}, {"format", t.format}, {"shape", t.shape},
                       {"params", t.params}, {"bytes", t.bytes}, {"bits_per_weight", t.bits_per_weight},
                       {"rel_rmse", t.rel_rmse}, {"rel_output_error", t.rel_output_error}, {"seconds", t.seconds}});
  return {{"out", out}, {"recipe", r.recipe}, {"total_bytes", r.total_bytes}, {"total_params", r.total_params},
          {"bits_per_weight", r.bpw_all()}, {"linear_bits_per_weight", r.bpw_linear()},
          {"seconds", r.seconds}, {"calib_windows", r.calib_windows}, {"calib_window_len", r.calib_window_len},
          {"peak_rss_bytes", r.peak_rss_bytes}, {"tensors", tensors}};
}

// One line per tensor kind (q_proj, k_proj, ...): mean relative RMSE over the layers.
void print_table(const QuantizeReport& r) {
  struct Row { std::string format; double rmse_sum = 0, out_sum = 0; int n = 0; int64_t bytes = 0; };
  std::map<std::string, Row> rows;
  for (const TensorReport& t : r.tensors) {
    const std::string kind = t.name.starts_with("layers.") ? t.name.substr(t.name.rfind('.') + 1) : t.name;
    Row& row = rows[kind];
    row.format = t.format;
    row.rmse_sum += t.rel_rmse;
    row.out_sum += t.rel_output_error;
    row.bytes += t.bytes;
    ++row.n;
  }
  // rel_out_err: ‖(W − Ŵ)X‖² / ‖WX‖² on the calibration inputs (calibrated runs only).
  std::printf("%-14s %-18s %6s %12s %10s %11s\n", "tensor", "format", "count", "bytes", "rel_rmse", "rel_out_err");
  for (const auto& [kind, row] : rows) {
    std::printf("%-14s %-18s %6d %12lld %10.5f", kind.c_str(), row.format.c_str(), row.n,
                static_cast<long long>(row.bytes), row.rmse_sum / row.n);
    if (row.out_sum >= 0) std::printf(" %11.3e\n", row.out_sum / row.n);
    else std::printf(" %11s\n", "-");
  }
}

// The source with every --lora adapter merged into its float weights (train/merge.h).
ModelSource merged_source(ModelSource src, const LoraArgs& l) {
  if (l.dirs.empty()) return src;
  return merge_lora(src, load_lora_adapters(l, src.config), l.scale);
}

nlohmann::json tune_json(const KdTuneReport& t, const std::string& method) {
  return {{"method", method}, {"tensors", t.tensors}, {"scales", t.scales}, {"trained_codes", t.trained_codes},
          {"codes_changed", t.codes_changed}, {"steps", t.steps},
          {"train_windows", t.train_windows}, {"holdout_windows", t.holdout_windows}, {"window_len", t.window_len},
          {"kl_before", t.kl_before}, {"kl_after", t.kl_after}, {"improved", t.improved}, {"seconds", t.seconds},
          {"tokens_per_second", t.tokens_per_second}};
}

// Removes a file when it goes out of scope (the untuned intermediate of --tune).
struct RemoveOnExit {
  std::string path;
  ~RemoveOnExit() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

// --tune kd: trains the scales of the quantized file `ptq` against the float source and writes
// the result to `out` (train/kd_tune.h).
KdTuneReport tune_quantized(QuantizeArgs& a, const ModelSource& src, const Tokenizer& tok, const std::string& ptq) {
  ModelSource student_src = load_lowbit_model(ptq);
  LlamaModel student(student_src);
  const LlamaModel teacher(src);
  CalibrationOptions co = a.opt.calibration;
  co.windows = a.tune_windows;
  co.seed = a.opt.calibration.seed + 1;  // other windows than the quantizer's calibration
  co.window_len = std::min<int64_t>(co.window_len, src.config.max_seq_len);
  if (co.source.empty()) co.source = default_calibration_source();
  const CalibrationSet cs = load_calibration(tok, co);
  const auto t0 = std::chrono::steady_clock::now();
  a.tune_opt.progress = [t0](int64_t done, int64_t total, double kl, double lr) {
    char what[96];
    std::snprintf(what, sizeof what, "tune kd: KL %.5f, lr %.2e", kl, lr);
    progress_eta(done, total, done == total ? "" : what,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
  const int64_t n_layers = src.config.n_layers, block_steps = a.tune_opt.block_steps;
  a.tune_opt.block_progress = [t0, n_layers, block_steps](int64_t layer, int64_t done, int64_t, double err, double) {
    char what[96];
    std::snprintf(what, sizeof what, "tune kd: block %lld, relative error %.4f", static_cast<long long>(layer), err);
    progress_eta(layer * block_steps + done, n_layers * block_steps, what,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
  a.tune_opt.seed = co.seed;
  a.tune_opt.train_codes = a.tune == "kd";
  const KdTuneReport t = tune_kd(teacher, student, student_src.quantized, cs.windows, a.tune_opt);
  rewrite_lowbit_quantized(ptq, student_src.quantized, a.out);
  return t;
}

// --loftq DIR: re-quantizes the targets of the round-to-nearest file `ptq` jointly with a LoRA
// initialisation (train/loftq.h), writes the base to `out` and the adapter to DIR.
LoftqReport loftq_quantized(const QuantizeArgs& a, const ModelSource& src, const std::string& ptq) {
  ModelSource q = load_lowbit_model(ptq);
  LoftqReport rep;
  const LoraAdapter ad = loftq_model(src, q.quantized, q.recipes, q.rotation, a.loftq_lora, a.loftq_iters, &rep);
  rewrite_lowbit_quantized(ptq, q.quantized, a.out);
  save_peft_adapter(ad, src.config, a.loftq_dir, std::filesystem::absolute(a.out).lexically_normal().string());
  return rep;
}

void run_quantize(QuantizeArgs& a) {
  apply_threads(a.threads);
  const ModelSource src = merged_source(open_model_source(a.model), a.lora);
  const auto tok = load_tokenizer_for(src, a.tokenizer);
  const auto t0 = std::chrono::steady_clock::now();
  a.opt.progress = [t0](int64_t done, int64_t total, const std::string& what) {
    progress_eta(done, total, what, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
  std::optional<Allocation> al;
  if (a.budget.given() || !a.budget.measurement.empty()) al = plan_to_budget(a, src, *tok);
  if (!a.tune.empty() && !a.loftq_dir.empty()) throw Error("quantize", "--tune and --loftq cannot be combined");
  std::optional<KdTuneReport> tuned;
  std::optional<LoftqReport> loftq;
  QuantizeReport r;
  if (a.tune.empty() && a.loftq_dir.empty()) {
    r = quantize_model(src, *tok, a.opt, a.out);
  } else {
    const RemoveOnExit ptq{a.out + ".ptq." + std::to_string(::getpid())};
    r = quantize_model(src, *tok, a.opt, ptq.path);
    if (!a.tune.empty()) tuned = tune_quantized(a, src, *tok, ptq.path);
    else loftq = loftq_quantized(a, src, ptq.path);
  }
  const int64_t file_bytes = static_cast<int64_t>(std::filesystem::file_size(a.out));
  if (a.json) {
    nlohmann::json j = report_json(r, a.out);
    j["file_bytes"] = file_bytes;
    j["file_bits_per_weight"] = 8.0 * static_cast<double>(file_bytes) / static_cast<double>(r.total_params);
    if (al) j["predicted_kld"] = al->predicted_kld;
    if (tuned) j["tune"] = tune_json(*tuned, a.tune);
    if (loftq)
      j["loftq"] = {{"adapter", a.loftq_dir}, {"matrices", loftq->matrices}, {"rank", a.loftq_lora.rank},
                    {"iters", a.loftq_iters}, {"rel_error_plain", loftq->rel_error_plain},
                    {"rel_error", loftq->rel_error}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  if (al) print_allocation(*al);
  print_table(r);
  std::printf("\nwrote %s: %lld bytes (%.3f bits/weight over all weights), tensors %.3f bits/weight, linear layers "
              "%.3f (%.2f s)\n",
              a.out.c_str(), static_cast<long long>(file_bytes), 8.0 * static_cast<double>(file_bytes) / static_cast<double>(r.total_params),
              r.bpw_all(), r.bpw_linear(), r.seconds);
  if (r.calib_windows > 0)
    std::printf("calibration: %lld windows x %lld tokens; peak memory %.1f MiB\n", static_cast<long long>(r.calib_windows),
                static_cast<long long>(r.calib_window_len), r.peak_rss_bytes / 1048576.0);
  if (tuned)
    std::printf("tune %s: %lld scales and %lld codes (%lld changed) of %lld tensors, %lld steps on %lld windows x %lld tokens (%.0f tok/s, %.1f s); "
                "held-out KL vs the float model %.5f -> %.5f (%+.1f%%)%s\n",
                a.tune.c_str(), static_cast<long long>(tuned->scales), static_cast<long long>(tuned->trained_codes),
                static_cast<long long>(tuned->codes_changed), static_cast<long long>(tuned->tensors),
                static_cast<long long>(tuned->steps), static_cast<long long>(tuned->train_windows),
                static_cast<long long>(tuned->window_len), tuned->tokens_per_second, tuned->seconds, tuned->kl_before,
                tuned->kl_after, 100.0 * (tuned->kl_after / tuned->kl_before - 1.0),
                tuned->improved ? "" : "; not lower, so the untuned scales were kept");
  if (loftq)
    std::printf("loftq: %lld matrices, rank %lld, %lld iterations; mean ||W - Q - sBA|| / ||W|| %.4f (plain quantization "
                "%.4f); adapter in %s (lowbit finetune --init-adapter)\n",
                static_cast<long long>(loftq->matrices), static_cast<long long>(a.loftq_lora.rank),
                static_cast<long long>(a.loftq_iters), loftq->rel_error, loftq->rel_error_plain, a.loftq_dir.c_str());
}

}  // namespace

void add_quantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "quantize", "quantize a model into a .lowbit file (recipes, bit budgets; --tune kd recovery, --loftq adapter init)");
  cmd->add_option("-m,--model", a->model, "HF directory, .gguf or llama2.c .bin")->required();
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer file (default: found with the model)");
  cmd->add_option("-o,--out", a->out, "output .lowbit file")->required();
  cmd->add_option("-r,--recipe", a->opt.recipe,
                  "e.g. rtn:int4:g128, rtn:int4:g128:clip, rtn:nf4:g64:dq, imatrix:int4:g128, gptq:int3:g128[:noact][:clip], "
                  "awq:int4:g128, gptq:e8p:g64 (E8 lattice code book, 2.25 bits/weight), f16; gptq:int2:g64:lr16 adds a "
                  "rank-16 fp16 correction of each linear's quantization error; append :rot to rotate "
                  "the model first (Hadamard, folded into the weights), :had to rotate down_proj inputs at run time and/or "
                  ":smooth[<alpha>] for SmoothQuant's migration of activation outliers into the weights (for --act int8/int4)")
      ->each([a](const std::string&) { a->recipe_given = true; });
  cmd->add_option("--tensor", a->opt.overrides, "per-tensor override REGEX=RECIPE (repeatable), e.g. 'lm_head=f16'; REGEX (ECMAScript, matched "
                  "against whole tensor names) may have at most 512 characters, 32 groups and 4 quantifiers, and no "
                  "quantified group that holds a quantifier or '|'");
  add_budget_options(*cmd, &a->budget,
                     "default ALG:e8p:g128, ALG:e8p:g64, ALG:int3:g128 ... ALG:int8:g128 with the recipe's algorithm, "
                     "default gptq; embeddings rtn:e8p and rtn:int3..8:clip and f16; :rot on the recipe rotates first");
  add_calibration_options(*cmd, &a->opt.calibration, "imatrix/gptq/awq");
  add_lora_options(*cmd, &a->lora, "merge a LoRA adapter into the float weights before quantizing");
  cmd->add_option("--tune", a->tune,
                  "after quantizing, recover quality by distillation from the float model (KL on the calibration "
                  "windows): kd = train the group scales and the integer codes of the quantized linear layers; "
                  "kd-scales = the scales only (less memory); formats and file size unchanged")
      ->check(CLI::IsMember({"kd", "kd-scales"}));
  cmd->add_option("--tune-steps", a->tune_opt.steps, "end-to-end optimizer steps of --tune (default 200)")->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--tune-batch", a->tune_opt.batch, "calibration windows per --tune step (default 4)")
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--tune-lr", a->tune_opt.adam.lr,
                  "peak learning rate of --tune's end-to-end stage, a relative scale step (default 1e-2)")
      ->check(CLI::Range(1e-7, 1.0));
  cmd->add_option("--tune-windows", a->tune_windows,
                  "calibration windows --tune trains on (default 512; from the --calib text, --calib-len tokens each)")
      ->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--tune-block-steps", a->tune_opt.block_steps,
                  "--tune kd: block-wise reconstruction steps per block before the end-to-end stage (default 200; 0 = none)")
      ->check(CLI::Range(0, 1 << 24));
  cmd->add_option("--tune-code-lr", a->tune_opt.code_lr_mult,
                  "--tune kd: the codes' learning rate in the block-wise stage, relative to its scales' (default 5)")
      ->check(CLI::Range(0.0, 1e4));
  cmd->add_option("--tune-holdout", a->tune_opt.holdout,
                  "calibration windows held out of --tune to measure KL before/after (default 16)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--loftq", a->loftq_dir,
                  "LoftQ: quantize (rtn recipes) jointly with a LoRA initialisation so that Q + s*B*A ~ W, and write that "
                  "adapter (PEFT) here for lowbit finetune --init-adapter");
  cmd->add_option("--loftq-rank", a->loftq_lora.rank, "LoftQ adapter rank (default 16)")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--loftq-alpha", a->loftq_lora.alpha, "LoftQ adapter alpha, scale alpha/rank (default 32)")
      ->check(positive());
  cmd->add_option("--loftq-iters", a->loftq_iters, "LoftQ alternations of quantize and SVD (default 5)")
      ->check(CLI::Range(1, 100));
  cmd->add_flag("--json", a->json, "print one JSON object with the full per-tensor table");
  add_threads_option(*cmd, &a->threads);
  cmd->callback([a] { run_quantize(*a); });
}

void add_merge(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  a->opt.recipe = "f16";
  CLI::App* cmd = app.add_subcommand(
      "merge", "merge LoRA adapters into a float model's weights and write a .lowbit (f16, or quantized with any recipe)");
  cmd->add_option("-m,--model", a->model, "the float base: HF directory, .gguf or llama2.c .bin")->required();
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer file (default: found with the model)");
  add_lora_options(*cmd, &a->lora, "the adapter to merge; several add up")->required();
  cmd->add_option("-o,--out", a->out, "output .lowbit file")->required();
  cmd->add_option("-r,--recipe", a->opt.recipe, "quantize the merged model with this recipe (default f16; e.g. gptq:int4:g128)")
      ->each([a](const std::string&) { a->recipe_given = true; });
  add_calibration_options(*cmd, &a->opt.calibration, "imatrix/gptq/awq");
  cmd->add_flag("--json", a->json, "print one JSON object with the full per-tensor table");
  add_threads_option(*cmd, &a->threads);
  cmd->callback([a] { run_quantize(*a); });
}

}  // namespace lowbit::cli
