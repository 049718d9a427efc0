#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "base/atomic_file.h"
#include "base/error.h"
#include "cli/commands.h"
#include "eval/task_data.h"
#include "pipeline/sweep.h"

namespace lowbit::cli {

namespace {

struct SweepArgs {
  std::string model, recipes, tasks;
  SweepOptions opt;
  bool json = false;
  int threads = 0;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    const std::string part = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (part.empty()) throw Error("sweep", "--recipes '" + s + "': empty recipe in the list");
    out.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

void run_sweep_command(SweepArgs& a) {
  apply_threads(a.threads);
  a.opt.recipes = split_commas(a.recipes);
  if (!a.tasks.empty()) {
    a.opt.tasks = split_list(a.tasks);
    for (const std::string& t : a.opt.tasks) find_task(t);  // an unknown name fails before any work
  }
  const auto t0 = std::chrono::steady_clock::now();
  a.opt.progress = [t0](const std::string& what) {
    progress_eta(0, 1, what, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
  std::vector<SweepRow> rows = run_sweep(a.model, a.opt);
  progress_eta(1, 1, "", 0);
  const std::string title = std::filesystem::path(a.model).filename().string() + " on " +
                            std::filesystem::path(a.opt.text_file).filename().string() + ", ctx " +
                            std::to_string(a.opt.ctx);
  const std::string dir = a.opt.out_dir;
  write_text(dir + "/sweep.md", sweep_markdown(rows, title));
  write_text(dir + "/sweep.json", sweep_json(rows));
  write_text(dir + "/sweep.gp", sweep_gnuplot_script(rows, title, dir + "/sweep.png.tmp"));
  const bool plotted = render_plot(dir + "/sweep.gp", dir + "/sweep.png", "sweep");
  if (a.json) {
    std::printf("%s", sweep_json(rows).c_str());
    return;
  }
  std::printf("%s\nwrote %s/sweep.md, %s/sweep.json%s\n", sweep_markdown(rows, title).c_str(), dir.c_str(),
              dir.c_str(), plotted ? (", " + dir + "/sweep.png").c_str() : "");
}

}  // namespace

void add_sweep(CLI::App& app) {
  auto a = std::make_shared<SweepArgs>();
  CLI::App* cmd = app.add_subcommand(
      "sweep", "quantize a model with several recipes and tabulate size, perplexity, KLD, top-1 and speed");
  cmd->add_option("-m,--model", a->model, "the original model (HF directory, .gguf or llama2.c .bin)")->required();
  cmd->add_option("--recipes", a->recipes,
                  "comma-separated recipes, e.g. rtn:int4:g128,gptq:int4:g128,awq:int4:g128,gptq:int3:g128; RECIPE@BPW "
                  "allocates bits per tensor to BPW bits/weight (e.g. gptq:int4:g128@2.5, gptq:int4:g128:rot@3)")
      ->required();
  cmd->add_option("-f,--file", a->opt.text_file, "evaluation text file")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--out", a->opt.out_dir, "directory for the .lowbit files and sweep.md/.json/.png")
      ->default_val("out/sweep");
  add_window_options(*cmd, &a->opt.ctx, "window length in tokens (default 256)", &a->opt.stride,
                     &a->opt.max_tokens);
  cmd->add_option("--calib", a->opt.quantize.calibration.source, "calibration text file or directory (as quantize)");
  cmd->add_option("--calib-windows", a->opt.quantize.calibration.windows, "calibration windows (default 128)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--calib-len", a->opt.quantize.calibration.window_len, "tokens per calibration window (default 512)")
      ->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--bench-tokens", a->opt.bench_gen, "decode tokens timed per recipe (0 = skip; default 32)")
      ->check(non_negative());
  cmd->add_option("--tasks", a->tasks,
                  "also score zero-shot tasks per recipe (comma-separated: hellaswag, arc_easy, arc_challenge, mmlu; "
                  "acc_norm, lm-eval protocol, files from $LOWBIT_SHARED/data)");
  cmd->add_option("--task-limit", a->opt.task_limit, "documents per task (default all)")->check(positive());
  cmd->add_flag("--json", a->json, "print the table as JSON");
  add_threads_option(*cmd, &a->threads);
  cmd->callback([a] { run_sweep_command(*a); });
}

}  // namespace lowbit::cli
