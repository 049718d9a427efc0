#include <cstdio>
#include <filesystem>
#include <map>

#include "base/error.h"
#include "cli/commands.h"
#include "export/gguf_export.h"
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
      out.c_str(), std::filesystem::file_size(out) / 1048576.0, ggml_type_label(r.file_type),
      r.tensors.size(), types.c_str(), kept, requantized);
}

void run_export(const ExportArgs& a) {
  if (a.format != "gguf")
    throw Error("export", "unknown --format '" + a.format + "' (supported: gguf)");
  GgufExportOptions opt;
  if (!a.type.empty()) opt.type = parse_ggml_type(a.type);
  opt.name = a.name;
  apply_threads(a.threads);
  const ModelSource src = open_model_source(a.model);
  const auto tok = load_tokenizer_for(src, a.tokenizer);
  print_summary(export_gguf(src, *tok, opt, a.out), a.out);
}

}  // namespace

void add_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  CLI::App* cmd =
      app.add_subcommand("export", "write a model in another tool's format (GGUF for llama.cpp)");
  cmd->add_option("-m,--model", a->model, ".lowbit file, HF directory, .gguf or llama2.c .bin")
      ->required();
  cmd->add_option("--format", a->format, "output format (gguf)");
  cmd->add_option("-o,--out", a->out, "output file")->required();
  cmd->add_option("--type", a->type,
                  "F32, F16, Q8_0 or Q4_0 (default: Q4_0 for int4:g32 models, Q8_0 for int8:g32, "
                  "F16 for float models)");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer file (default: the model's own)");
  cmd->add_option("--name", a->name, "general.name (default: the model's file name)");
  add_threads_option(*cmd, &a->threads);
  cmd->callback([a] { run_export(*a); });
}

}  // namespace lowbit::cli
