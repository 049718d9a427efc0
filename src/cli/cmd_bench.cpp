#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/bandwidth.h"
#include "cli/commands.h"
#include "eval/bench.h"
#include "model/loader.h"

namespace lowbit::cli {

namespace {

struct BenchArgs {
  std::string model, kv_type = "f32";
  LoraArgs lora;
  int64_t n_prompt = 128, n_gen = 64, reps = 3;
  bool json = false, no_bandwidth = false;
  int threads = 0;
};

void run_bench(const BenchArgs& a) {
  apply_threads(a.threads);
  const ModelSource src = open_model_source(a.model);
  LlamaModel model(src);
  apply_lora(model, a.lora);
  BenchResult r = bench(model, a.n_prompt, a.n_gen, a.reps, parse_kv_type(a.kv_type));
  if (!a.no_bandwidth) r.bandwidth_gbs = measure_read_bandwidth_gbs();
  const double gbs = r.decode_tok_s * static_cast<double>(r.weight_bytes) / 1e9;
  if (a.json) {
    nlohmann::json j = {{"model", a.model},          {"threads", r.threads},
                        {"n_prompt", r.n_prompt},    {"n_gen", r.n_gen},
                        {"repetitions", r.repetitions}, {"prefill_tok_s", r.prefill_tok_s},
                        {"prefill_tok_s_sd", r.prefill_tok_s_sd}, {"decode_tok_s", r.decode_tok_s},
                        {"decode_tok_s_sd", r.decode_tok_s_sd}, {"bytes_per_token", r.weight_bytes},
                        {"weight_gbs", gbs}, {"bandwidth_gbs", r.bandwidth_gbs},
                        {"roofline_fraction", r.roofline_fraction()}, {"kv_type", a.kv_type},
                        {"kv_bytes_per_token", r.kv_bytes_per_token}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("model %s, %lld threads, %lld reps\n", a.model.c_str(), static_cast<long long>(r.threads),
              static_cast<long long>(r.repetitions));
  std::printf("prefill  %5lld tokens: %10.1f tok/s (sd %.1f)\n", static_cast<long long>(r.n_prompt),
              r.prefill_tok_s, r.prefill_tok_s_sd);
  std::printf("decode   %5lld tokens: %10.1f tok/s (sd %.1f)\n", static_cast<long long>(r.n_gen),
              r.decode_tok_s, r.decode_tok_s_sd);
  std::printf("weights read per decoded token: %.2f MiB (%.1f GB/s)\n", r.weight_bytes / 1048576.0, gbs);
  std::printf("KV cache (%s): %lld bytes per token\n", a.kv_type.c_str(), static_cast<long long>(r.kv_bytes_per_token));
  if (r.bandwidth_gbs > 0)
    std::printf("measured read bandwidth %.1f GB/s: decode at %.0f%% of the memory roofline\n",
                r.bandwidth_gbs, 100.0 * r.roofline_fraction());
}

}  // namespace

void add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "prefill and decode throughput");
  cmd->add_option("-m,--model", a->model, "HF directory, .gguf or llama2.c .bin")->required();
  cmd->add_option("-p,--n-prompt", a->n_prompt, "prompt tokens for prefill")->check(positive());
  cmd->add_option("-n,--n-gen", a->n_gen, "tokens to decode")->check(positive());
  cmd->add_option("-r,--reps", a->reps, "repetitions (after one warm-up)")->check(positive());
  add_lora_options(*cmd, &a->lora);
  add_kv_type_option(*cmd, &a->kv_type);
  cmd->add_flag("--no-bandwidth", a->no_bandwidth, "skip the memory bandwidth probe");
  cmd->add_flag("--json", a->json, "print one JSON object");
  add_threads_option(*cmd, &a->threads);
  cmd->callback([a] { run_bench(*a); });
}

}  // namespace lowbit::cli
