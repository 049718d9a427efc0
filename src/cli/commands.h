// `lowbit` subcommands. Each add_* registers its options on the app and the callback that runs
// it. Commands print results on stdout and diagnostics on stderr; errors are thrown as
// lowbit::Error and turned into one stderr line by main().
#pragma once

#include <CLI/CLI.hpp>

#include "io/llama_config.h"
#include "pipeline/calibration.h"
#include <string>
#include <vector>

namespace lowbit {
struct Allocation;
struct Measurement;
struct MeasureOptions;
struct ModelSource;
class Tokenizer;
class LlamaModel;
class LoraAdapter;
}

namespace lowbit::cli {

// Option checks with short messages ("--temp: must be >= 0, got -1"); CLI11's NonNegativeNumber
// and PositiveNumber print the largest double in full, 300 digits.
CLI::Validator non_negative();
CLI::Validator positive();

void add_generate(CLI::App& app);
void add_perplexity(CLI::App& app);
void add_eval(CLI::App& app);
void add_sweep(CLI::App& app);
void add_info(CLI::App& app);
void add_bench(CLI::App& app);
void add_synth(CLI::App& app);
void add_quantize(CLI::App& app);
void add_export(CLI::App& app);
void add_finetune(CLI::App& app);
void add_train(CLI::App& app);
void add_merge(CLI::App& app);
void add_serve(CLI::App& app);
void add_tasks(CLI::App& app);

// Shared by perplexity, eval and sweep: -c/--ctx (`ctx_help` says its default), --stride and
// --max-tokens, with the windowing of eval/perplexity.h.
void add_window_options(CLI::App& cmd, int64_t* ctx, const std::string& ctx_help, int64_t* stride,
                        int64_t* max_tokens);

// Shared by quantize and export: --calib, --calib-windows, --calib-len, --seed into `opt`;
// `used_by` names what reads them (e.g. "imatrix/gptq/awq").
void add_calibration_options(CLI::App& cmd, CalibrationOptions* opt, const std::string& used_by);

// Shared by quantize and export: bit allocation to a budget (pipeline/bit_allocation.h).
struct BudgetArgs {
  double target_bpw = 0;
  std::string target_size, measurement, candidates, embed_candidates;
  int64_t kld_windows = 4;
  bool given() const { return target_bpw > 0 || !target_size.empty(); }
};
// --target-bpw, --target-size, --measurement, --candidates, --embed-candidates, --kld-windows;
// `defaults` describes the default candidate lists.
void add_budget_options(CLI::App& cmd, BudgetArgs* a, const std::string& defaults);
// The target file size in bytes for a model with config `c`. Throws lowbit::Error("<command>",
// ...) unless exactly one of the two targets is given and it parses.
int64_t budget_target_bytes(const BudgetArgs& a, const LlamaConfig& c, const std::string& command);
// The measurement for `mo` with --kld-windows and --measurement applied: read back (saying so on
// stderr) or made and saved (pipeline/bit_allocation.h load_or_measure).
Measurement budget_measurement(const BudgetArgs& a, MeasureOptions mo, const ModelSource& src, const Tokenizer& tok);
// The allocation table on stdout.
void print_allocation(const Allocation& al);
// "a,b,,c" -> {"a", "b", "c"}
std::vector<std::string> split_list(const std::string& s);

// Shared by generate, perplexity, eval, bench and serve: --kv-type f32|f16|q8|q4 (the KV cache
// format, model/kv_cache.h), checked when parsed.
void add_kv_type_option(CLI::App& cmd, std::string* kv_type);
// Shared by perplexity and eval: --act int8|int4[:g<G>] (activation quantization of every block
// linear's input as an evaluation mode, model/act_quant.h), checked when parsed.
void add_act_option(CLI::App& cmd, std::string* act);

// Shared by commands: --threads (0 = all cores), applied before the command runs.
void add_threads_option(CLI::App& cmd, int* threads);
void apply_threads(int threads);

// Shared by generate, perplexity, eval and bench: --lora DIR (repeatable: the updates add up),
// --lora-scale.
struct LoraArgs {
  std::vector<std::string> dirs;
  double scale = 1.0;
};
// `what` describes --lora in the help; returns the --lora option (e.g. to make it required).
CLI::Option* add_lora_options(CLI::App& cmd, LoraArgs* a,
                              const std::string& what = "apply a LoRA adapter at run time");
// Each --lora adapter loaded for a model with config `c` (a note per adapter on stderr); throws
// lowbit::Error for a non-finite --lora-scale or a bad adapter.
std::vector<LoraAdapter> load_lora_adapters(const LoraArgs& a, const LlamaConfig& c);
// Loads each --lora PEFT adapter and attaches it to `m` (a note on stderr).
void apply_lora(LlamaModel& m, const LoraArgs& a);

// Writes `text` to `path` atomically (base/atomic_file.h).
void write_text(const std::string& path, const std::string& text);
// Runs gnuplot on `script_path`, which writes `png_path`.tmp, then renames it to `png_path` (no
// half-written PNG). Without gnuplot, or when it fails, says so on stderr ("lowbit <command>: ...")
// and returns false.
bool render_plot(const std::string& script_path, const std::string& png_path, const std::string& command);

// A one-line progress indicator on stderr (only when stderr is a terminal).
void progress_line(const char* what, int64_t done, int64_t total);
// The same for long jobs: "[done/total] what, ETA" with the ETA extrapolated from `elapsed`
// seconds (only when stderr is a terminal; a newline when done == total).
void progress_eta(int64_t done, int64_t total, const std::string& what, double elapsed);

}  // namespace lowbit::cli
