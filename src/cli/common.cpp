#include <unistd.h>

#include <cstdio>

#include "base/parallel.h"
#include "cli/commands.h"

namespace lowbit::cli {

void add_threads_option(CLI::App& cmd, int* threads) {
  cmd.add_option("-t,--threads", *threads, "threads to use (0 = all cores)")->check(CLI::NonNegativeNumber);
}

void add_window_options(CLI::App& cmd, int64_t* ctx, const std::string& ctx_help, int64_t* stride,
                        int64_t* max_tokens) {
  cmd.add_option("-c,--ctx", *ctx, ctx_help)->check(CLI::NonNegativeNumber);
  cmd.add_option("--stride", *stride, "window start step (default: ctx, non-overlapping)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--max-tokens", *max_tokens, "keep only the first M tokens of the file (0 = all)")
      ->check(CLI::NonNegativeNumber);
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

}  // namespace lowbit::cli
