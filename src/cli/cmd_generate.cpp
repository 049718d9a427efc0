#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "model/generate.h"
#include "model/loader.h"

namespace lowbit::cli {

namespace {

struct GenerateArgs {
  std::string model, tokenizer, prompt, kv_type = "f32";
  LoraArgs lora;
  int64_t n = 128;
  SamplerParams sampler;
  bool ignore_eos = false, json = false;
  int threads = 0;
};

void run_generate(const GenerateArgs& a) {
  apply_threads(a.threads);
  LoadedModel m = load_model(a.model, a.tokenizer);
  apply_lora(*m.model, a.lora);
  const std::vector<int32_t> prompt = m.tokenizer->encode(a.prompt, /*add_bos=*/true);
  GenerateOptions opt;
  opt.max_new_tokens = a.n;
  opt.sampler = a.sampler;
  opt.stop_at_eos = !a.ignore_eos;
  opt.kv_type = parse_kv_type(a.kv_type);
  opt.eos_id = m.tokenizer->eos_id();
  StreamDecoder stream(*m.tokenizer, /*continues_text=*/!a.prompt.empty());
  std::string text;
  std::vector<int32_t> ids;
  const GenerateStats st = generate(*m.model, prompt, opt, [&](int32_t id) {
    ids.push_back(id);
    std::string piece = stream.push(id);
    text += piece;
    if (!a.json) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  });
  const std::string rest = stream.flush();
  text += rest;
  const double decode_tok_s = st.decode_seconds > 0 ? st.generated / st.decode_seconds : 0.0;
  const double prefill_tok_s = st.prefill_seconds > 0 ? st.prompt_tokens / st.prefill_seconds : 0.0;
  if (a.json) {
    nlohmann::json j = {{"prompt", a.prompt},          {"prompt_ids", prompt},
                        {"ids", ids},                  {"text", text},
                        {"prompt_tokens", st.prompt_tokens}, {"generated_tokens", st.generated},
                        {"prefill_tok_s", prefill_tok_s}, {"decode_tok_s", decode_tok_s},
                        {"stopped_at_context", st.hit_context}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("%s\n", rest.c_str());
  std::fflush(stdout);  // the sample's last line before the stats on stderr
  if (st.hit_context)
    std::fprintf(stderr, "[stopped at the model's context of %lld tokens]\n",
                 static_cast<long long>(m.model->config().max_seq_len));
  std::fprintf(stderr, "[%lld prompt tokens at %.1f tok/s, %lld generated at %.1f tok/s]\n",
               static_cast<long long>(st.prompt_tokens), prefill_tok_s,
               static_cast<long long>(st.generated), decode_tok_s);
}

}  // namespace

void add_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "generate text from a prompt (streams the continuation)");
  cmd->add_option("-m,--model", a->model, "HF directory, .gguf or llama2.c .bin")->required();
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer file (default: found with the model)");
  cmd->add_option("-p,--prompt", a->prompt, "prompt text (BOS is prepended)");
  cmd->add_option("-n,--n-predict", a->n, "tokens to generate")->check(non_negative());
  cmd->add_option("--temp", a->sampler.temperature, "temperature; 0 = greedy")->check(non_negative());
  cmd->add_option("--top-k", a->sampler.top_k, "keep the k most likely tokens (0 = off)");
  cmd->add_option("--top-p", a->sampler.top_p, "nucleus sampling mass (1 = off)");
  cmd->add_option("--min-p", a->sampler.min_p, "drop tokens below min-p x the top probability (0 = off)");
  cmd->add_option("--repeat-penalty", a->sampler.repeat_penalty, "penalty for recent tokens (1 = off)");
  cmd->add_option("--repeat-last-n", a->sampler.repeat_last_n, "how many recent tokens the penalty sees");
  cmd->add_option("-s,--seed", a->sampler.seed, "random seed");
  cmd->add_flag("--ignore-eos", a->ignore_eos, "keep going past the end-of-sequence token");
  cmd->add_flag("--json", a->json, "print one JSON object instead of streaming");
  add_lora_options(*cmd, &a->lora);
  add_kv_type_option(*cmd, &a->kv_type);
  add_threads_option(*cmd, &a->threads);
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace lowbit::cli
