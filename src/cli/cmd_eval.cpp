#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/mapped_file.h"
#include "cli/commands.h"
#include "eval/compare.h"
#include "model/loader.h"

namespace lowbit::cli {

namespace {

struct EvalArgs {
  std::string model, reference, file, kv_type = "f32", act;  // kv_type: --model's cache, not the reference's
  LoraArgs lora;  // applied to --model, not to the reference
  int64_t ctx = 0, stride = 0, max_tokens = 0;
  bool json = false;
  int threads = 0;
};

// The text as the reference tokenizes it. The model's tokenizer must agree, or the two models
// would be scored on different streams; identical tokenizers (same blob) need no second pass.
std::vector<int32_t> tokenize_both(const LoadedModel& m, const LoadedModel& ref,
                                   const std::string& text, const std::string& file) {
  std::vector<int32_t> ids = ref.tokenizer->encode(text, /*add_bos=*/false);
  const TokenizerBlob a = m.tokenizer->to_blob(), b = ref.tokenizer->to_blob();
  if (a.kind == b.kind && a.bytes == b.bytes) return ids;
  const std::vector<int32_t> mids = m.tokenizer->encode(text, /*add_bos=*/false);
  if (mids != ids) {
    const auto diff = std::mismatch(ids.begin(), ids.end(), mids.begin(), mids.end());
    throw Error("eval", "the model's and the reference's tokenizers encode " + file +
                            " differently (first difference at token " +
                            std::to_string(diff.first - ids.begin()) + ")");
  }
  return ids;
}

void print_json(const EvalArgs& a, const CompareResult& r, int64_t ctx, int64_t stride,
                int64_t file_tokens) {
  nlohmann::json j = {{"model", a.model},
                      {"reference", a.reference},
                      {"file", a.file},
                      {"kv_type", a.kv_type},
                      {"act", a.act.empty() ? "none" : a.act},
                      {"ppl", r.ppl},
                      {"ppl_stderr", r.ppl_stderr},
                      {"ref_ppl", r.ref_ppl},
                      {"ref_ppl_stderr", r.ref_ppl_stderr},
                      {"delta_ppl", r.delta_ppl},
                      {"ln_ratio_mean", r.ln_ratio_mean},
                      {"kld_mean", r.kld_mean},
                      {"kld_stderr", r.kld_stderr},
                      {"kld_median", r.kld_median},
                      {"kld_p90", r.kld_p90},
                      {"kld_p99", r.kld_p99},
                      {"kld_max", r.kld_max},
                      {"top1_agree", r.top1_agree},
                      {"tokens", r.tokens_scored},
                      {"windows", r.windows},
                      {"ctx", ctx},
                      {"stride", stride},
                      {"file_tokens", file_tokens},
                      {"seconds", r.seconds}};
  std::printf("%s\n", j.dump().c_str());
}

void print_table(const CompareResult& r, int64_t ctx, int64_t stride, int64_t file_tokens) {
  std::printf("%-16s %12s %12s\n", "", "model", "reference");
  std::printf("%-16s %12.4f %12.4f\n", "ppl", r.ppl, r.ref_ppl);
  std::printf("%-16s %12.4f %12.4f\n", "ppl stderr", r.ppl_stderr, r.ref_ppl_stderr);
  std::printf("%-16s %+12.4f   (mean ln(ppl/ref_ppl) %+.6f)\n", "delta ppl", r.delta_ppl,
              r.ln_ratio_mean);
  std::printf("%-16s %12.6f +/- %.6f\n", "KLD mean", r.kld_mean, r.kld_stderr);
  std::printf("%-16s %12.6f\n", "KLD median", r.kld_median);
  std::printf("%-16s %12.6f\n", "KLD p90", r.kld_p90);
  std::printf("%-16s %12.6f\n", "KLD p99", r.kld_p99);
  std::printf("%-16s %12.6f\n", "KLD max", r.kld_max);
  std::printf("%-16s %11.2f%%\n", "top-1 agree", 100.0 * r.top1_agree);
  std::printf(
      "tokens scored %lld in %lld windows of %lld (stride %lld); file has %lld tokens; %.2f s\n",
      static_cast<long long>(r.tokens_scored), static_cast<long long>(r.windows),
      static_cast<long long>(ctx), static_cast<long long>(stride),
      static_cast<long long>(file_tokens), r.seconds);
}

void run_eval(const EvalArgs& a) {
  apply_threads(a.threads);
  const std::string text = read_text_file(a.file);
  LoadedModel m = load_model(a.model);
  apply_lora(*m.model, a.lora);
  m.model->set_activation_quant(parse_act_quant(a.act));
  LoadedModel ref = load_model(a.reference);
  check_same_vocab(*m.model, *ref.model);
  std::vector<int32_t> ids = tokenize_both(m, ref, text, a.file);
  const int64_t file_tokens = static_cast<int64_t>(ids.size());
  if (a.max_tokens > 0 && a.max_tokens < file_tokens) ids.resize(static_cast<size_t>(a.max_tokens));
  const int64_t max_ctx = std::min(m.model->config().max_seq_len, ref.model->config().max_seq_len);
  const int64_t ctx = a.ctx > 0 ? a.ctx : std::min<int64_t>(max_ctx, 2048);
  const int64_t stride = a.stride > 0 ? a.stride : ctx;
  const CompareResult r =
      compare_models(*m.model, *ref.model, ids, ctx, stride,
                     [](int64_t d, int64_t t) { progress_line("windows", d, t); }, parse_kv_type(a.kv_type));
  if (a.json) {
    print_json(a, r, ctx, stride, file_tokens);
  } else {
    print_table(r, ctx, stride, file_tokens);
  }
}

}  // namespace

void add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval",
                                     "compare a (quantized) model with its reference: ppl of both, "
                                     "KL divergence, top-1 agreement");
  cmd->add_option("-m,--model", a->model,
                  "the model to measure (.lowbit, HF directory, .gguf, llama2.c .bin)")
      ->required();
  cmd->add_option("-r,--reference", a->reference, "the full-precision reference model")->required();
  cmd->add_option("-f,--file", a->file,
                  "text file (tokenized whole, no BOS, by both tokenizers, which must agree)")
      ->required();
  add_window_options(*cmd, &a->ctx, "window length in tokens (default: the models' training context, at most 2048)",
                     &a->stride, &a->max_tokens);
  cmd->add_flag("--json", a->json, "print one JSON object");
  add_lora_options(*cmd, &a->lora);
  add_kv_type_option(*cmd, &a->kv_type);
  add_act_option(*cmd, &a->act);
  add_threads_option(*cmd, &a->threads);
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace lowbit::cli
