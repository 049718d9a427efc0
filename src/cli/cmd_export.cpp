#include <cstdio>
#include <filesystem>
#include <map>

#include "base/error.h"
#include "cli/commands.h"
#include "export/gguf_export.h"
#include "export/hf_quant_export.h"
#include "model/loader.h"

namespace lowbit::cli {

namespace {

struct ExportArgs {
  std::string model, format = "gguf", out, type, tokenizer, name;
  int threads = 0;
};

void print_summary(const GgufExportReport& r, const std::string& out) {
  std::map<std::string, int> by_type;
  int kept = 0, requantized = 0;
  for (const GgufExportTensor& t : r.tensors) {
    ++by_type[ggml_type_label(t.type)];
    kept += t.codes_kept;
    requantized += t.requantized;
  }
  std::string types;
  for (const auto& [type, n] : by_type)
    types += (types.empty() ? "" : ", ") + std::to_string(n) + " " + type;
  std::printf(
      "wrote %s: %.2f MiB, file type %s; %zu tensors (%s); %d with codes kept exactly, %d "
      "re-quantized\n",
      out.c_str(), std::filesystem::file_size(out) / 1048576.0, r.file_type_name.c_str(),
      r.tensors.size(), types.c_str(), kept, requantized);
}

void run_hf_export(const ExportArgs& a) {
  HfQuantExportOptions opt;
  opt.format = parse_hf_quant_format(a.format);
  if (!a.type.empty()) throw Error("export", "--type applies to --format gguf only");
  if (!a.tokenizer.empty())
    throw Error("export", "--tokenizer applies to --format gguf only (" + a.format + " copies the model's own)");
  apply_threads(a.threads);
  const ModelSource src = open_model_source(a.model);
  const HfQuantExportReport r = export_hf_quant(src, opt, a.out);
  std::string files;
  for (const std::string& f : r.files) files += (files.empty() ? "" : ", ") + f;
  std::printf("wrote %s (%s): %lld packed linears, %lld quantized tensors dequantized to f16, "
              "%lld groups sign-flipped; files: %s\n",
              a.out.c_str(), a.format.c_str(), static_cast<long long>(r.packed),
              static_cast<long long>(r.dequantized), static_cast<long long>(r.flipped_groups), files.c_str());
}

void run_export(const ExportArgs& a) {
  if (a.format == "gptq" || a.format == "awq" || a.format == "compressed-tensors") return run_hf_export(a);
  if (a.format != "gguf")
    throw Error("export", "unknown --format '" + a.format + "' (supported: gguf, gptq, awq, compressed-tensors)");
  GgufExportOptions opt;
  if (!a.type.empty()) parse_export_type(a.type, opt);
  opt.name = a.name;
  apply_threads(a.threads);
  const ModelSource src = open_model_source(a.model);
  const auto tok = load_tokenizer_for(src, a.tokenizer);
  print_summary(export_gguf(src, *tok, opt, a.out), a.out);
}

}  // namespace

void add_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "write a model in another tool's format: GGUF for llama.cpp, or a Hugging Face GPTQ / AWQ / "
      "compressed-tensors checkpoint directory for transformers, vLLM, AutoGPTQ, AutoAWQ");
  cmd->add_option("-m,--model", a->model, ".lowbit file, HF directory, .gguf or llama2.c .bin")
      ->required();
  cmd->add_option("--format", a->format,
                  "gguf (default); gptq (int2/3/4/8, fp16 scales, in/out multiples of 32); awq "
                  "(int4, group dividing the input size); compressed-tensors (pack-quantized int4/int8). "
                  "The HF formats need a quantized model (.lowbit) and keep its codes exactly; "
                  "nf4/fp4/fp8/ternary, :dq and other grids are refused")
      ->check(CLI::IsMember({"gguf", "gptq", "awq", "compressed-tensors"}));
  cmd->add_option("-o,--out", a->out, "output file (gguf) or new/empty directory (gptq, awq, compressed-tensors)")
      ->required();
  cmd->add_option("--type", a->type,
                  "F32, F16, Q8_0, Q5_0, Q4_0, Q6_K, Q4_K or Q4_K_M (llama.cpp's mix: Q4_K with "
                  "Q6_K output and attn_v/ffn_down of some layers; K-quant rows not a multiple of "
                  "256 fall back to Q8_0/Q5_0) (default: Q4_0 for int4:g32 models, Q8_0 for "
                  "int8:g32, F16 for float models)");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer file (default: the model's own)");
  cmd->add_option("--name", a->name, "general.name (default: the model's file name)");
  add_threads_option(*cmd, &a->threads);
  cmd->callback([a] { run_export(*a); });
}

}  // namespace lowbit::cli
