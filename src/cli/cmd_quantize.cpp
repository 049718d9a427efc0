#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/error.h"
#include "cli/commands.h"
#include "model/loader.h"
#include "pipeline/bit_allocation.h"
#include "pipeline/quantize.h"
#include "train/merge.h"

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
  const QuantizeReport r = quantize_model(src, *tok, a.opt, a.out);
  const int64_t file_bytes = static_cast<int64_t>(std::filesystem::file_size(a.out));
  if (a.json) {
    nlohmann::json j = report_json(r, a.out);
    j["file_bytes"] = file_bytes;
    j["file_bits_per_weight"] = 8.0 * static_cast<double>(file_bytes) / static_cast<double>(r.total_params);
    if (al) j["predicted_kld"] = al->predicted_kld;
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
}

}  // namespace

void add_quantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "quantize a model into a .lowbit file");
  cmd->add_option("-m,--model", a->model, "HF directory, .gguf or llama2.c .bin")->required();
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer file (default: found with the model)");
  cmd->add_option("-o,--out", a->out, "output .lowbit file")->required();
  cmd->add_option("-r,--recipe", a->opt.recipe,
                  "e.g. rtn:int4:g128, rtn:int4:g128:clip, rtn:nf4:g64:dq, imatrix:int4:g128, gptq:int3:g128[:noact][:clip], "
                  "awq:int4:g128, f16; append :rot to rotate the model first (Hadamard, folded into the weights) and/or :had to "
                  "rotate down_proj inputs at run time")
      ->each([a](const std::string&) { a->recipe_given = true; });
  cmd->add_option("--tensor", a->opt.overrides, "per-tensor override REGEX=RECIPE (repeatable), e.g. 'lm_head=f16'");
  add_budget_options(*cmd, &a->budget,
                     "default ALG:int2:g128:asym ... ALG:int8:g128 with the recipe's algorithm, default gptq; embeddings "
                     "rtn:...:clip and f16; :rot on the recipe rotates first");
  add_calibration_options(*cmd, &a->opt.calibration, "imatrix/gptq/awq");
  add_lora_options(*cmd, &a->lora, "merge a LoRA adapter into the float weights before quantizing");
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
