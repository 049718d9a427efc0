#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "io/gguf.h"
#include "model/loader.h"

namespace lowbit::cli {

namespace {

struct InfoArgs {
  std::string model, tokenizer;
  bool json = false;
};

// A float as the shortest decimal that reads back as the same float ("1e-05", not
// 9.999999747378752e-06 as a widened double would print).
double shortest(float v) { return std::stod(fmt::format("{}", v)); }

const char* rope_name(RopeStyle s) { return s == RopeStyle::RotateHalf ? "rotate-half" : "interleaved"; }

nlohmann::json config_json(const LlamaConfig& c) {
  return {{"architecture", c.architecture}, {"hidden_size", c.dim},
          {"intermediate_size", c.hidden_dim}, {"layers", c.n_layers},
          {"heads", c.n_heads}, {"kv_heads", c.n_kv_heads}, {"head_dim", c.head_dim},
          {"vocab_size", c.vocab_size}, {"context_length", c.max_seq_len},
          {"rms_norm_eps", shortest(c.norm_eps)}, {"rope_theta", shortest(c.rope_theta)},
          {"rope_style", rope_name(c.rope_style)}, {"tied_embeddings", c.tie_embeddings},
          {"attention_bias", c.attention_bias}, {"bos_id", c.bos_id}, {"eos_id", c.eos_id}};
}

nlohmann::json tensors_json(const ModelSource& src, int64_t* params, int64_t* bytes) {
  nlohmann::json list = nlohmann::json::array();
  *params = *bytes = 0;
  for (const auto& [name, t] : src.tensors) {
    list.push_back({{"name", name}, {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"bytes", t.nbytes}});
    *params += t.numel();
    *bytes += static_cast<int64_t>(t.nbytes);
  }
  for (const auto& [name, q] : src.quantized) {
    const auto c = src.corrections.find(name);  // a low-rank correction stored beside it (fp16)
    const int64_t lr_rank = c == src.corrections.end() ? 0 : c->second.rank;
    const int64_t nbytes = q.storage_bytes() + (lr_rank ? fp16_bytes(c->second) : 0);
    list.push_back({{"name", name}, {"dtype", q.spec.to_string() + (lr_rank ? "+lr" + std::to_string(lr_rank) : "")},
                    {"shape", {q.rows, q.cols}}, {"bytes", nbytes},
                    {"bits_per_weight", 8.0 * static_cast<double>(nbytes) / static_cast<double>(q.rows * q.cols)}});
    *params += q.rows * q.cols;
    *bytes += nbytes;
  }
  std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a["name"] < b["name"]; });
  return list;
}

void print_text(const ModelSource& src, const nlohmann::json& cfg, const nlohmann::json& tensors,
                int64_t params, int64_t bytes, const Tokenizer& tok) {
  std::printf("model      %s (%s)\n", src.path.c_str(), src.format.c_str());
  if (!src.recipe.empty()) std::printf("%-18s %s\n", "recipe", src.recipe.c_str());
  if (!src.rotation.empty()) std::printf("%-18s %s\n", "rotation", src.rotation.c_str());
  for (const auto& [k, v] : cfg.items()) std::printf("%-18s %s\n", k.c_str(), v.dump().c_str());
  std::printf("%-18s %s, %d tokens (bos %d, eos %d)\n", "tokenizer", tok.kind().c_str(),
              tok.vocab_size(), tok.bos_id(), tok.eos_id());
  std::printf("%-18s %lld (%.2f M)\n", "parameters", static_cast<long long>(params), params / 1e6);
  std::printf("%-18s %lld (%.2f MiB)\n\n", "tensor bytes", static_cast<long long>(bytes), bytes / 1048576.0);
  std::printf("%-28s %-16s %-16s %s\n", "tensor", "dtype", "shape", "bytes");
  for (const auto& t : tensors)
    std::printf("%-28s %-16s %-16s %lld\n", t["name"].get<std::string>().c_str(),
                t["dtype"].get<std::string>().c_str(), t["shape"].dump().c_str(),
                static_cast<long long>(t["bytes"].get<int64_t>()));
}

void run_info(const InfoArgs& a) {
  const ModelSource src = open_model_source(a.model);
  const std::unique_ptr<Tokenizer> tok = load_tokenizer_for(src, a.tokenizer);
  int64_t params = 0, bytes = 0;
  const nlohmann::json cfg = config_json(src.config);
  const nlohmann::json tensors = tensors_json(src, &params, &bytes);
  if (!a.json) {
    print_text(src, cfg, tensors, params, bytes, *tok);
    return;
  }
  nlohmann::json j = {{"path", src.path}, {"format", src.format}, {"recipe", src.recipe}, {"config", cfg},
                      {"tokenizer", {{"kind", tok->kind()}, {"vocab_size", tok->vocab_size()},
                                     {"bos_id", tok->bos_id()}, {"eos_id", tok->eos_id()}}},
                      {"parameters", params}, {"bytes", bytes}, {"tensors", tensors}};
  if (!src.rotation.empty()) j["rotation"] = nlohmann::json::parse(src.rotation, nullptr, false);
  std::printf("%s\n", j.dump().c_str());
}

}  // namespace

void add_info(CLI::App& app) {
  auto a = std::make_shared<InfoArgs>();
  CLI::App* cmd = app.add_subcommand("info", "architecture, shapes and tensor list of a model");
  cmd->add_option("-m,--model", a->model, "HF directory, .gguf or llama2.c .bin")->required();
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer file (default: found with the model)");
  cmd->add_flag("--json", a->json, "print one JSON object");
  cmd->callback([a] { run_info(*a); });
}

}  // namespace lowbit::cli
