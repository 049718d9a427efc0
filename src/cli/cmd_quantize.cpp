#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "model/loader.h"
#include "pipeline/quantize.h"

namespace lowbit::cli {

namespace {

struct QuantizeArgs {
  std::string model, tokenizer, out;
  QuantizeOptions opt;
  bool json = false;
  int threads = 0;
};

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
  const QuantizeReport r = quantize_model(src, *tok, a.opt, a.out);
  if (a.json) {
    std::printf("%s\n", report_json(r, a.out).dump().c_str());
    return;
  }
  print_table(r);
  std::printf("\nwrote %s: %.2f MiB, %.3f bits/weight overall, %.3f bits/weight in linear layers (%.2f s)\n",
              a.out.c_str(), r.total_bytes / 1048576.0, r.bpw_all(), r.bpw_linear(), r.seconds);
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
                  "awq:int4:g128, f16");
  cmd->add_option("--tensor", a->opt.overrides, "per-tensor override REGEX=RECIPE (repeatable), e.g. 'lm_head=f16'");
  add_calibration_options(*cmd, &a->opt.calibration, "imatrix/gptq/awq");
  cmd->add_flag("--json", a->json, "print one JSON object with the full per-tensor table");
  add_threads_option(*cmd, &a->threads);
  cmd->callback([a] { run_quantize(*a); });
}

}  // namespace lowbit::cli
