#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "base/error.h"
#include "cli/commands.h"
#include "model/loader.h"
#include "pipeline/bit_allocation.h"
#include "pipeline/quantize.h"

namespace lowbit::cli {

namespace {

struct QuantizeArgs {
  std::string model, tokenizer, out;
  QuantizeOptions opt;
  bool json = false;
  int threads = 0;
  // Bit allocation to a budget (pipeline/bit_allocation.h).
  double target_bpw = 0;
  std::string target_size, measurement, candidates, embed_candidates;
  int64_t kld_windows = 8;
  bool recipe_given = false;
};

// "3000000", "2.9M", "2900K", "1.5G" (powers of 1000) or "2.8MiB", "2800KiB", "1GiB" (of 1024).
int64_t parse_size(const std::string& s) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    throw Error("quantize", "--target-size '" + s + "': expected bytes, e.g. 2900000, 2.9M or 2.8MiB");
  }
  const std::string unit = s.substr(used);
  const std::map<std::string, double> units = {{"", 1},          {"B", 1},          {"K", 1e3},
                                               {"M", 1e6},       {"G", 1e9},        {"KiB", 1024.0},
                                               {"MiB", 1048576.0}, {"GiB", 1073741824.0}};
  const auto u = units.find(unit);
  if (u == units.end() || !(v > 0) || v * u->second > 9e18)
    throw Error("quantize", "--target-size '" + s + "': expected a positive size, e.g. 2900000, 2.9M or 2.8MiB");
  return static_cast<int64_t>(v * u->second);
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

void print_allocation(const Allocation& al) {
  std::printf("bit allocation: %lld of %lld budget bytes for the quantized tensors; predicted KLD %.5f "
              "(sum of per-tensor predictions)\n",
              static_cast<long long>(al.tensor_bytes), static_cast<long long>(al.budget_bytes), al.predicted_kld);
  std::printf("%-22s %-24s %10s %7s %12s\n", "tensor", "recipe", "bytes", "bpw", "pred_kld");
  for (const AllocationRow& r : al.rows)
    std::printf("%-22s %-24s %10lld %7.3f %12.3e\n", r.name.c_str(), r.recipe.c_str(), static_cast<long long>(r.bytes),
                8.0 * static_cast<double>(r.bytes) / static_cast<double>(r.params), r.predicted_kld);
  std::printf("\n");
}

// Measures (or reuses the measurement), allocates the budget and fills a.opt.assigned.
Allocation plan_to_budget(QuantizeArgs& a, const ModelSource& src, const Tokenizer& tok) {
  if (!a.opt.overrides.empty()) throw Error("quantize", "--tensor cannot be combined with --target-bpw/--target-size");
  if ((a.target_bpw > 0) == !a.target_size.empty())
    throw Error("quantize", "give one of --target-bpw and --target-size");
  MeasureOptions mo;
  mo.recipe = a.recipe_given ? a.opt.recipe : "gptq:int4:g128";
  mo.linear_candidates = split_list(a.candidates);
  mo.embed_candidates = split_list(a.embed_candidates);
  mo.calibration = a.opt.calibration;
  mo.kld_windows = a.kld_windows;
  mo.progress = a.opt.progress;
  a.opt.recipe = mo.recipe;
  const int64_t target =
      a.target_bpw > 0 ? target_bytes_for_bpw(src.config, a.target_bpw) : parse_size(a.target_size);
  bool reused = false;
  const Measurement m = load_or_measure(a.measurement, src, tok, mo, &reused);
  if (reused) std::fprintf(stderr, "reusing the measurement in %s\n", a.measurement.c_str());
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

void run_quantize(QuantizeArgs& a) {
  apply_threads(a.threads);
  const ModelSource src = open_model_source(a.model);
  const auto tok = load_tokenizer_for(src, a.tokenizer);
  const auto t0 = std::chrono::steady_clock::now();
  a.opt.progress = [t0](int64_t done, int64_t total, const std::string& what) {
    progress_eta(done, total, what, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
  const bool budgeted = a.target_bpw > 0 || !a.target_size.empty();
  std::optional<Allocation> al;
  if (budgeted) al = plan_to_budget(a, src, *tok);
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
                  "awq:int4:g128, f16; append :rot to rotate the model first (Hadamard, folded into the weights)")
      ->each([a](const std::string&) { a->recipe_given = true; });
  cmd->add_option("--target-bpw", a->target_bpw,
                  "allocate bits per tensor so the file has this many bits per weight (all weights; the recipe's "
                  "algorithm and :rot apply, default gptq)")
      ->check(CLI::Range(0.5, 32.0));
  cmd->add_option("--target-size", a->target_size, "allocate bits per tensor to this file size, e.g. 2.9M or 2.8MiB");
  cmd->add_option("--measurement", a->measurement,
                  "with --target-*: read the per-tensor measurement from FILE if it exists, else save it there");
  cmd->add_option("--candidates", a->candidates,
                  "with --target-*: comma-separated recipes for linear layers and lm_head (default ALG:int2:g128:asym ... "
                  "ALG:int8:g128)");
  cmd->add_option("--embed-candidates", a->embed_candidates,
                  "with --target-*: comma-separated recipes for embed_tokens (default rtn:int2:g64:asym:clip ... f16)");
  cmd->add_option("--kld-windows", a->kld_windows, "with --target-*: calibration windows for the per-tensor KLD probes (default 8)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--tensor", a->opt.overrides, "per-tensor override REGEX=RECIPE (repeatable), e.g. 'lm_head=f16'");
  add_calibration_options(*cmd, &a->opt.calibration, "imatrix/gptq/awq");
  cmd->add_flag("--json", a->json, "print one JSON object with the full per-tensor table");
  add_threads_option(*cmd, &a->threads);
  cmd->callback([a] { run_quantize(*a); });
}

}  // namespace lowbit::cli
