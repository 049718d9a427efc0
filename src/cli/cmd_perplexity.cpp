#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/mapped_file.h"
#include "cli/commands.h"
#include "eval/perplexity.h"
#include "model/loader.h"

namespace lowbit::cli {

namespace {

struct PerplexityArgs {
  std::string model, tokenizer, file, kv_type = "f32", act;
  LoraArgs lora;
  int64_t ctx = 0, stride = 0, max_tokens = 0;
  bool json = false;
  int threads = 0;
};

void run_perplexity(const PerplexityArgs& a) {
  apply_threads(a.threads);
  LoadedModel m = load_model(a.model, a.tokenizer);
  apply_lora(*m.model, a.lora);
  m.model->set_activation_quant(parse_act_quant(a.act));
  const std::string text = read_text_file(a.file);
  std::vector<int32_t> ids = m.tokenizer->encode(text, /*add_bos=*/false);
  const int64_t total_tokens = static_cast<int64_t>(ids.size());
  if (a.max_tokens > 0 && a.max_tokens < total_tokens) ids.resize(static_cast<size_t>(a.max_tokens));
  const int64_t ctx = a.ctx > 0 ? a.ctx : std::min<int64_t>(m.model->config().max_seq_len, 2048);
  const int64_t stride = a.stride > 0 ? a.stride : ctx;
  const PerplexityResult r = perplexity(*m.model, ids, ctx, stride, [](int64_t d, int64_t t) {
    progress_line("windows", d, t);
  }, parse_kv_type(a.kv_type));
  if (a.json) {
    nlohmann::json j = {{"model", a.model},        {"file", a.file},
                        {"ppl", r.ppl},            {"ppl_stderr", r.ppl_stderr},
                        {"nll_mean", r.nll_mean},  {"tokens", r.tokens_scored},
                        {"tokens_evaluated", r.tokens_evaluated}, {"windows", r.windows},
                        {"ctx", ctx},              {"stride", stride},
                        {"file_tokens", total_tokens}, {"seconds", r.seconds},
                        {"tok_per_s", r.tok_per_s}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("ppl %.4f +/- %.4f\n", r.ppl, r.ppl_stderr);
  std::printf("tokens scored %lld in %lld windows of %lld (stride %lld); file has %lld tokens\n",
              static_cast<long long>(r.tokens_scored), static_cast<long long>(r.windows),
              static_cast<long long>(ctx), static_cast<long long>(stride),
              static_cast<long long>(total_tokens));
  std::printf("%.1f tok/s (%.2f s)\n", r.tok_per_s, r.seconds);
}

}  // namespace

void add_perplexity(CLI::App& app) {
  auto a = std::make_shared<PerplexityArgs>();
  CLI::App* cmd = app.add_subcommand("perplexity", "perplexity of a model on a text file");
  cmd->add_option("-m,--model", a->model, "HF directory, .gguf or llama2.c .bin")->required();
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer file (default: found with the model)");
  cmd->add_option("-f,--file", a->file, "text file (tokenized whole, no BOS)")->required();
  add_window_options(*cmd, &a->ctx, "window length in tokens (default: the model's training context, at most 2048)",
                     &a->stride, &a->max_tokens);
  add_lora_options(*cmd, &a->lora);
  add_kv_type_option(*cmd, &a->kv_type);
  add_act_option(*cmd, &a->act);
  cmd->add_flag("--json", a->json, "print one JSON object");
  add_threads_option(*cmd, &a->threads);
  cmd->callback([a] { run_perplexity(*a); });
}

}  // namespace lowbit::cli
