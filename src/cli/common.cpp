#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/parallel.h"
#include "cli/commands.h"
#include "model/act_quant.h"
#include "model/llama.h"
#include "pipeline/bit_allocation.h"
#include "train/peft.h"

namespace lowbit::cli {

namespace {
CLI::Validator number_at_least_zero(bool strict) {
  return CLI::Validator(
      [strict](std::string& text) -> std::string {
        double v = 0.0;
        size_t used = 0;
        try {
          v = std::stod(text, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != text.size() || !std::isfinite(v)) return "'" + text + "' is not a finite number";
        if (strict ? !(v > 0.0) : !(v >= 0.0)) return std::string("must be ") + (strict ? "> 0" : ">= 0") + ", got " + text;
        return "";
      },
      strict ? "> 0" : ">= 0");
}
}  // namespace

CLI::Validator non_negative() { return number_at_least_zero(false); }
CLI::Validator positive() { return number_at_least_zero(true); }


namespace {

// "3000000", "2.9M", "2900K", "1.5G" (powers of 1000) or "2.8MiB", "2800KiB", "1GiB" (of 1024).
int64_t parse_size(const std::string& s, const std::string& command) {
  const std::string hint = "--target-size '" + s + "': expected a positive size, e.g. 2900000, 2.9M or 2.8MiB";
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    throw Error(command, hint);
  }
  static const std::map<std::string, double> units = {{"", 1},         {"B", 1},           {"K", 1e3},
                                                      {"M", 1e6},      {"G", 1e9},         {"KiB", 1024.0},
                                                      {"MiB", 1048576.0}, {"GiB", 1073741824.0}};
  const auto u = units.find(s.substr(used));
  if (u == units.end() || !(v > 0) || v * u->second > 9e18) throw Error(command, hint);
  return static_cast<int64_t>(v * u->second);
}

}  // namespace

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

void add_budget_options(CLI::App& cmd, BudgetArgs* a, const std::string& defaults) {
  cmd.add_option("--target-bpw", a->target_bpw,
                 "choose each tensor's format so the file has this many bits per weight (over all weights)")
      ->check(CLI::Range(0.5, 32.0));
  cmd.add_option("--target-size", a->target_size, "choose each tensor's format for this file size, e.g. 2.9M or 2.8MiB");
  cmd.add_option("--measurement", a->measurement,
                 "with --target-*: read the per-tensor measurement from FILE if it exists, else save it there");
  cmd.add_option("--candidates", a->candidates,
                 "with --target-*: comma-separated candidates for the linear layers and lm_head (" + defaults + ")");
  cmd.add_option("--embed-candidates", a->embed_candidates, "with --target-*: comma-separated candidates for embed_tokens");
  cmd.add_option("--kld-windows", a->kld_windows,
                 "with --target-*: calibration windows for each tensor's KLD probe (default 4)")
      ->check(CLI::Range(1, 1 << 20));
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

Measurement budget_measurement(const BudgetArgs& a, MeasureOptions mo, const ModelSource& src, const Tokenizer& tok) {
  mo.kld_windows = a.kld_windows;
  bool reused = false;
  Measurement m = load_or_measure(a.measurement, src, tok, mo, &reused);
  if (reused) std::fprintf(stderr, "reusing the measurement in %s\n", a.measurement.c_str());
  return m;
}

int64_t budget_target_bytes(const BudgetArgs& a, const LlamaConfig& c, const std::string& command) {
  if ((a.target_bpw > 0) == !a.target_size.empty()) throw Error(command, "give one of --target-bpw and --target-size");
  return a.target_bpw > 0 ? target_bytes_for_bpw(c, a.target_bpw) : parse_size(a.target_size, command);
}

void add_kv_type_option(CLI::App& cmd, std::string* kv_type) {
  cmd.add_option("--kv-type", *kv_type, "KV cache format: f32 (exact), f16, q8 (8.5 bits) or q4 (5 bits)")
      ->check(CLI::IsMember({"f32", "f16", "q8", "q4"}))
      ->capture_default_str();
}

void add_act_option(CLI::App& cmd, std::string* act) {
  cmd.add_option("--act", *act, "round every block linear's input to int<2..8>[:g<group>] per token (W8A8/W4A4 studies)")
      ->check([](const std::string& s) {
        try {
          parse_act_quant(s);
          return std::string();
        } catch (const Error& e) {
          return std::string(e.message());
        }
      });
}

void add_threads_option(CLI::App& cmd, int* threads) {
  cmd.add_option("-t,--threads", *threads, "threads to use (0 = all cores)")->check(non_negative());
}

void add_window_options(CLI::App& cmd, int64_t* ctx, const std::string& ctx_help, int64_t* stride,
                        int64_t* max_tokens) {
  cmd.add_option("-c,--ctx", *ctx, ctx_help)->check(non_negative());
  cmd.add_option("--stride", *stride, "window start step (default: ctx, non-overlapping)")
      ->check(non_negative());
  cmd.add_option("--max-tokens", *max_tokens, "keep only the first M tokens of the file (0 = all)")
      ->check(non_negative());
}

void apply_threads(int threads) { set_num_threads(threads); }

void progress_line(const char* what, int64_t done, int64_t total) {
  if (!::isatty(STDERR_FILENO)) return;
  std::fprintf(stderr, "\r%s %lld/%lld", what, static_cast<long long>(done), static_cast<long long>(total));
  if (done == total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

void add_calibration_options(CLI::App& cmd, CalibrationOptions* opt, const std::string& used_by) {
  cmd.add_option("--calib", opt->source,
                 "calibration text file or directory for " + used_by +
                     " (default: $LOWBIT_SHARED/data/calibration, else ../shared/data/calibration)");
  cmd.add_option("--calib-windows", opt->windows, "calibration windows (default 128)")
      ->check(CLI::Range(1, 1 << 20));
  cmd.add_option("--calib-len", opt->window_len,
                 "tokens per calibration window (default 512, at most the model's context)")
      ->check(CLI::Range(2, 1 << 20));
  cmd.add_option("--seed", opt->seed, "seed for picking calibration windows (default 0)");
}

void progress_eta(int64_t done, int64_t total, const std::string& what, double elapsed) {
  if (!::isatty(STDERR_FILENO)) return;
  char eta[32] = "";
  if (done > 0 && done < total)
    std::snprintf(eta, sizeof eta, ", ETA %.0f s", elapsed * static_cast<double>(total - done) / static_cast<double>(done));
  std::fprintf(stderr, "\r\033[K[%lld/%lld] %s (%.0f s%s)", static_cast<long long>(done), static_cast<long long>(total),
               what.c_str(), elapsed, eta);
  if (done == total && what.empty()) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

CLI::Option* add_lora_options(CLI::App& cmd, LoraArgs* a, const std::string& what) {
  CLI::Option* dirs = cmd.add_option("--lora", a->dirs, what + " (PEFT directory, e.g. from lowbit finetune); repeatable")
                          ->allow_extra_args(false);  // one directory per --lora
  cmd.add_option("--lora-scale", a->scale, "multiply the adapters' updates by this (default 1)");
  return dirs;
}

std::vector<LoraAdapter> load_lora_adapters(const LoraArgs& a, const LlamaConfig& c) {
  if (!std::isfinite(a.scale)) throw Error("lora", "--lora-scale must be a finite number");
  std::vector<LoraAdapter> out;
  for (const std::string& dir : a.dirs) {
    out.push_back(load_peft_adapter(dir, c));
    const LoraAdapter& ad = out.back();
    std::fprintf(stderr, "LoRA adapter %s: r=%lld on %zu projections (scale %g)\n", dir.c_str(),
                 static_cast<long long>(ad.config().rank), ad.params().size(), ad.config().scale() * a.scale);
  }
  return out;
}

void apply_lora(LlamaModel& m, const LoraArgs& a) {
  for (const LoraAdapter& ad : load_lora_adapters(a, m.config())) ad.attach_to(m, a.scale);
}

void write_text(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text);
  f.commit();
}

// Renders the plot with gnuplot into a temp name, then renames it (no half-written PNG).
bool render_plot(const std::string& script_path, const std::string& png_path, const std::string& command) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    std::fprintf(stderr, "lowbit %s: gnuplot not found, plot skipped (install gnuplot-nox; script: %s)\n",
                 command.c_str(), script_path.c_str());
    return false;
  }
  const std::string cmd = "gnuplot '" + script_path + "' 2>/dev/null";
  if (std::system(cmd.c_str()) != 0 || !std::filesystem::exists(png_path + ".tmp")) {
    std::fprintf(stderr, "lowbit %s: gnuplot failed, plot skipped (script: %s)\n", command.c_str(), script_path.c_str());
    std::filesystem::remove(png_path + ".tmp");
    return false;
  }
  std::filesystem::rename(png_path + ".tmp", png_path);
  return true;
}

}  // namespace lowbit::cli
