#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "cli/commands.h"
#include "train/finetune.h"

namespace lowbit::cli {

namespace {

struct FinetuneArgs {
  FinetuneOptions opt;
  std::string targets = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj";
  std::string schedule = "constant";
  bool json = false;
  int threads = 0;
};

std::string fmt_duration(double s) {
  char b[32];
  if (s >= 3600) std::snprintf(b, sizeof b, "%dh%02dm", static_cast<int>(s / 3600), static_cast<int>(s / 60) % 60);
  else std::snprintf(b, sizeof b, "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  return b;
}

// One line per step on stderr (whether or not it is a terminal: training logs want every step).
void print_step(const StepLog& l, int64_t total) {
  const double per_step = l.seconds / static_cast<double>(std::max<int64_t>(1, l.step));
  std::fprintf(stderr, "step %lld/%lld  loss %.4f  lr %.3g  |g| %.3g  %.0f tok/s  ETA %s\n",
               static_cast<long long>(l.step), static_cast<long long>(total), l.loss, l.lr, l.grad_norm,
               l.seconds > 0 ? static_cast<double>(l.tokens) / l.seconds : 0.0,
               fmt_duration(per_step * static_cast<double>(total - l.step)).c_str());
}

nlohmann::json result_json(const FinetuneArgs& a, const FinetuneResult& r) {
  return {{"model", a.opt.model_path},
          {"base_format", r.base_format},
          {"data", a.opt.data_path},
          {"out", a.opt.out_dir},
          {"lora_r", a.opt.lora.rank},
          {"lora_alpha", a.opt.lora.alpha},
          {"targets", a.opt.lora.targets},
          {"trainable_params", r.trainable_params},
          {"train_sequences", r.train_sequences},
          {"heldout_sequences", r.heldout_sequences},
          {"total_steps", r.total_steps},
          {"steps_done", r.steps_done},
          {"resumed_from", r.resumed_from},
          {"finished", r.finished},
          {"final_train_loss", r.log.empty() ? 0.0 : r.log.back().loss},
          {"heldout_loss_before", r.before.loss},
          {"heldout_ppl_before", r.before.ppl},
          {"heldout_loss_after", r.after.loss},
          {"heldout_ppl_after", r.after.ppl},
          {"heldout_targets", r.before.targets},
          {"seconds", r.seconds},
          {"tok_per_s", r.tokens_per_s},
          {"gradient_checkpointing", r.recompute}};
}

void run_finetune(FinetuneArgs& a) {
  apply_threads(a.threads);
  a.opt.lora.targets = split_list(a.targets);
  a.opt.adam.schedule = parse_lr_schedule(a.schedule);
  const FinetuneResult r = finetune(a.opt, [&](const StepLog& l, int64_t total) { print_step(l, total); });
  const std::string dir = a.opt.out_dir;
  write_text(dir + "/loss.gp", loss_curve_gnuplot(r, std::filesystem::path(a.opt.model_path).filename().string() +
                                                         " LoRA r" + std::to_string(a.opt.lora.rank) + " on " +
                                                         std::filesystem::path(a.opt.data_path).filename().string(),
                                                  dir + "/loss.png.tmp"));
  render_plot(dir + "/loss.gp", dir + "/loss.png", "finetune");
  if (a.json) {
    std::printf("%s\n", result_json(a, r).dump().c_str());
    return;
  }
  std::printf("base %s (%s), LoRA r=%lld alpha=%g on %zu projections: %lld trainable parameters\n",
              a.opt.model_path.c_str(), r.base_format.c_str(), static_cast<long long>(a.opt.lora.rank), a.opt.lora.alpha,
              a.opt.lora.targets.size(), static_cast<long long>(r.trainable_params));
  std::printf("data %s: %lld training / %lld held-out sequences of <= %lld tokens\n", a.opt.data_path.c_str(),
              static_cast<long long>(r.train_sequences), static_cast<long long>(r.heldout_sequences),
              static_cast<long long>(a.opt.data.ctx));
  std::printf("steps %lld/%lld%s, %.1f s, %.0f tok/s\n", static_cast<long long>(r.steps_done),
              static_cast<long long>(r.total_steps), r.resumed_from ? " (resumed)" : "", r.seconds, r.tokens_per_s);
  if (r.before.targets > 0)
    std::printf("held-out loss %.4f (ppl %.3f) before", r.before.loss, r.before.ppl);
  if (r.finished && r.after.targets > 0) std::printf(" -> %.4f (ppl %.3f) after", r.after.loss, r.after.ppl);
  if (r.before.targets > 0) std::printf("\n");
  std::printf(r.finished ? "wrote %s/adapter_config.json, adapter_model.safetensors, checkpoint.safetensors, train_log.csv\n"
                         : "stopped early: checkpoint in %s/checkpoint.safetensors (continue with --resume)\n",
              dir.c_str());
}

}  // namespace

void add_finetune(CLI::App& app) {
  auto a = std::make_shared<FinetuneArgs>();
  FinetuneOptions& o = a->opt;
  CLI::App* cmd = app.add_subcommand("finetune", "train LoRA adapters on a (quantized) model: QLoRA; writes a PEFT adapter");
  cmd->add_option("-m,--model", o.model_path, "base model: .lowbit (QLoRA), HF directory, .gguf or llama2.c .bin")->required();
  cmd->add_option("--tokenizer", o.tokenizer_path, "tokenizer file (default: found with the model)");
  cmd->add_option("-d,--data", o.data_path, "training data: a text file, or .jsonl with text / prompt+completion / instruction+output")
      ->required();
  cmd->add_option("-o,--out", o.out_dir, "output directory (adapter, checkpoint, train_log.csv, loss.png)")->required();
  cmd->add_option("-r,--lora-r", o.lora.rank, "LoRA rank (default 16)")->check(CLI::Range(1, 4096));
  cmd->add_option("--lora-alpha", o.lora.alpha, "LoRA alpha; the update is scaled by alpha/r (default 32)");
  cmd->add_option("--lora-dropout", o.lora.dropout, "dropout on the adapters' input (default 0)");
  cmd->add_flag("--rslora", o.lora.rslora, "scale by alpha/sqrt(r) (rank-stabilized LoRA)");
  cmd->add_option("--targets", a->targets, "comma-separated projections to adapt (default: all seven)");
  cmd->add_option("--init-adapter", o.init_adapter,
                  "start from this PEFT adapter (e.g. lowbit quantize --loftq's) instead of A random, B = 0; its rank, "
                  "alpha and targets must match");
  cmd->add_option("--lr", o.adam.lr, "peak learning rate (default 2e-4)");
  cmd->add_option("--schedule", a->schedule, "learning-rate schedule after warmup: constant, linear, cosine (default constant)");
  cmd->add_option("--warmup", o.adam.warmup_steps, "linear warmup steps (default 0)");
  cmd->add_option("--weight-decay", o.adam.weight_decay, "AdamW decoupled weight decay (default 0)");
  cmd->add_option("--clip", o.adam.clip, "clip the global gradient norm to this (default 1; 0 = off)");
  cmd->add_option("--steps", o.steps, "optimizer steps (default: from --epochs)");
  cmd->add_option("--epochs", o.epochs, "passes over the training data when --steps is not given (default 1)");
  cmd->add_option("-b,--batch", o.batch, "sequences per micro-batch (default 4)");
  cmd->add_option("--grad-accum", o.grad_accum, "micro-batches per optimizer step (default 1)");
  cmd->add_option("-c,--ctx", o.data.ctx, "tokens per training sequence (default 256)");
  cmd->add_option("--holdout", o.data.holdout, "fraction of the data held out for evaluation (default 0.1: the tail)");
  cmd->add_option("--seed", o.seed, "seed for adapter init, data order and dropout (default 42)");
  cmd->add_option("--save-every", o.save_every, "write the checkpoint every N steps (default: only at the end)");
  cmd->add_option("--stop-after", o.stop_after, "stop with a checkpoint after this step (continue later with --resume)");
  cmd->add_option("--checkpointing", o.checkpointing,
                  "recompute each layer's activations in the backward pass: on, off, auto (default: off when keeping "
                  "them takes <= 1 GiB)");
  cmd->add_flag("--resume", o.resume, "continue from --out's checkpoint.safetensors (same options)");
  cmd->add_flag("--json", a->json, "print one JSON object");
  add_threads_option(*cmd, &a->threads);
  cmd->callback([a] { run_finetune(*a); });
}

}  // namespace lowbit::cli
