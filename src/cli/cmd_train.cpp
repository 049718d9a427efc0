// `lowbit train`: a small LLaMA trained from scratch, in fp32 or quantization-aware
// (train/pretrain.h).
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "cli/commands.h"
#include "train/pretrain.h"

namespace lowbit::cli {

namespace {

struct TrainArgs {
  PretrainOptions opt;
  std::string schedule = "cosine";
  bool json = false;
  int threads = 0;
  int64_t log_every = 10;
};

nlohmann::json result_json(const TrainArgs& a, const PretrainResult& r) {
  nlohmann::json heldout = nlohmann::json::array();
  for (const auto& [step, h] : r.heldout) heldout.push_back({{"step", step}, {"loss", h.loss}, {"ppl", h.ppl}});
  const LlamaConfig& c = r.config;
  return {{"weights", a.opt.weights},
          {"data", a.opt.data_path},
          {"tokenizer", a.opt.tokenizer_path},
          {"out", a.opt.out_dir},
          {"config",
           {{"dim", c.dim}, {"hidden", c.hidden_dim}, {"layers", c.n_layers}, {"heads", c.n_heads},
            {"kv_heads", c.n_kv_heads}, {"vocab", c.vocab_size}, {"ctx", c.max_seq_len}}},
          {"parameters", r.parameters},
          {"steps", r.steps},
          {"steps_done", r.log.empty() ? 0 : r.log.back().step},
          {"resumed_from", r.resumed_from},
          {"finished", r.finished},
          {"train_sequences", r.train_sequences},
          {"heldout_sequences", r.heldout_sequences},
          {"tokens", r.log.empty() ? 0 : r.log.back().tokens},
          {"final_train_loss", r.log.empty() ? 0.0 : r.log.back().loss},
          {"heldout", heldout},
          {"seconds", r.seconds},
          {"tok_per_s", r.tokens_per_s},
          {"files", r.files}};
}

void run_train(TrainArgs& a) {
  apply_threads(a.threads);
  a.opt.adam.schedule = parse_lr_schedule(a.schedule);
  if (a.log_every < 1) throw Error("train", "--log-every must be >= 1");
  const PretrainResult r = pretrain(a.opt, [&](const StepLog& l, int64_t total) {
    if (l.step % a.log_every != 0 && l.step != total) return;
    std::fprintf(stderr, "step %lld/%lld  loss %.4f  lr %.3g  |g| %.3g  %.0f tok/s\n", static_cast<long long>(l.step),
                 static_cast<long long>(total), l.loss, l.lr, l.grad_norm,
                 l.seconds > 0 ? static_cast<double>(l.tokens) / l.seconds : 0.0);
  });
  const std::string& dir = a.opt.out_dir;
  std::vector<std::pair<int64_t, double>> points;
  for (const auto& [step, h] : r.heldout) points.emplace_back(step, h.loss);
  write_text(dir + "/loss.gp",
             loss_curve_gnuplot(r.log, points,
                                "lowbit train (" + a.opt.weights + ") on " +
                                    std::filesystem::path(a.opt.data_path).filename().string(),
                                dir + "/loss.png.tmp"));
  render_plot(dir + "/loss.gp", dir + "/loss.png", "train");
  if (a.json) {
    std::printf("%s\n", result_json(a, r).dump().c_str());
    return;
  }
  const LlamaConfig& c = r.config;
  std::printf("model: dim %lld, hidden %lld, %lld layers, %lld/%lld heads, vocab %lld, ctx %lld: %lld parameters; "
              "block weights %s\n",
              static_cast<long long>(c.dim), static_cast<long long>(c.hidden_dim), static_cast<long long>(c.n_layers),
              static_cast<long long>(c.n_heads), static_cast<long long>(c.n_kv_heads),
              static_cast<long long>(c.vocab_size), static_cast<long long>(c.max_seq_len),
              static_cast<long long>(r.parameters), a.opt.weights.c_str());
  std::printf("data %s: %lld training / %lld held-out windows\n", a.opt.data_path.c_str(),
              static_cast<long long>(r.train_sequences), static_cast<long long>(r.heldout_sequences));
  std::printf("steps %lld/%lld%s, %lld tokens, %.1f s, %.0f tok/s\n", static_cast<long long>(r.log.back().step),
              static_cast<long long>(r.steps), r.resumed_from ? " (resumed)" : "",
              static_cast<long long>(r.log.back().tokens), r.seconds, r.tokens_per_s);
  if (!r.finished) {
    std::printf("stopped early: checkpoint in %s/checkpoint.safetensors (continue with --resume)\n", dir.c_str());
    return;
  }
  std::printf("held-out loss %.4f (ppl %.2f) at the start -> %.4f (ppl %.2f) after training\n",
              r.heldout.front().second.loss, r.heldout.front().second.ppl, r.heldout.back().second.loss,
              r.heldout.back().second.ppl);
  std::string files;
  for (const std::string& f : r.files) files += (files.empty() ? "" : ", ") + f;
  std::printf("wrote %s/: %s\n", dir.c_str(), files.c_str());
}

}  // namespace

void add_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  PretrainOptions& o = a->opt;
  CLI::App* cmd = app.add_subcommand(
      "train", "train a small LLaMA from scratch, in fp32 or quantization-aware (BitNet b1.58 ternary, int4, ...)");
  cmd->add_option("--tokenizer", o.tokenizer_path, "tokenizer file: tokenizer.model, tokenizer.json or llama2.c .bin")
      ->required();
  cmd->add_option("--vocab", o.vocab_hint, "vocabulary size (needed for a llama2.c tokenizer .bin)")->check(positive());
  cmd->add_option("-d,--data", o.data_path, "training text (the tail --holdout fraction is held out)")->required();
  cmd->add_option("-o,--out", o.out_dir, "output directory (model.lowbit, HF copy, train_log.csv, loss.png)")
      ->required();
  cmd->add_option("-w,--weights", o.weights,
                  "f32, or the format the block projections train in (straight-through): ternary:g64 (BitNet "
                  "b1.58), ternary:gc, int4:g32, int2:g32:asym, nf4, ... (default f32)");
  cmd->add_option("--dim", o.shape.dim, "hidden size (default 128)")->check(positive());
  cmd->add_option("--layers", o.shape.layers, "layers (default 4)")->check(positive());
  cmd->add_option("--heads", o.shape.heads, "attention heads (default 4)")->check(positive());
  cmd->add_option("--kv-heads", o.shape.kv_heads, "key/value heads (default: --heads)")->check(positive());
  cmd->add_option("--hidden", o.shape.hidden, "MLP width (default 8/3 dim, rounded up to 32)")->check(positive());
  cmd->add_option("-c,--ctx", o.data.ctx, "tokens per training window and the model's context (default 128)");
  cmd->add_option("--holdout", o.data.holdout, "fraction of the text held out (default 0.1)");
  cmd->add_option("--steps", o.steps, "optimizer steps (default 300)");
  cmd->add_option("-b,--batch", o.batch, "windows per step (default 8)");
  cmd->add_option("--lr", o.adam.lr, "peak learning rate (default 2e-3)");
  cmd->add_option("--schedule", a->schedule, "after warmup: constant, linear, cosine (default cosine)");
  cmd->add_option("--warmup", o.adam.warmup_steps, "linear warmup steps (default 20)");
  cmd->add_option("--weight-decay", o.adam.weight_decay, "AdamW decoupled weight decay (default 0)");
  cmd->add_option("--clip", o.adam.clip, "clip the global gradient norm (default 1; 0 = off)");
  cmd->add_option("--eval-every", o.eval_every, "held-out loss every N steps (default: start and end only)");
  cmd->add_option("--log-every", a->log_every, "print a progress line every N steps (default 10)");
  cmd->add_option("--seed", o.seed, "seed of the initial weights and the data order (default 0)");
  cmd->add_option("--save-every", o.save_every, "write the checkpoint every N steps (default: only at the end)");
  cmd->add_option("--stop-after", o.stop_after, "stop with a checkpoint after this step (continue later with --resume)");
  cmd->add_flag("--resume", o.resume, "continue from --out's checkpoint.safetensors (same options)");
  cmd->add_flag("--json", a->json, "print one JSON object");
  add_threads_option(*cmd, &a->threads);
  cmd->callback([a] { run_train(*a); });
}

}  // namespace lowbit::cli
