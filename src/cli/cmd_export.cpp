#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

#include "base/error.h"
#include "cli/commands.h"
#include "export/gguf_allocation.h"
#include "export/gguf_export.h"
#include "export/gguf_lora.h"
#include "export/hf_quant_export.h"
#include "model/loader.h"
#include "train/peft.h"

namespace lowbit::cli {

namespace {

struct ExportArgs {
  std::string model, format = "gguf", out, type, tokenizer, name, method = "rtn", lora;
  CalibrationOptions calibration;
  BudgetArgs budget;
  int threads = 0;
};

// Measures (or reuses the measurement), allocates llama.cpp types to the target, fills opt.
void plan_gguf_to_budget(const ExportArgs& a, const ModelSource& src, const Tokenizer& tok, GgufExportOptions& opt) {
  if (opt.type || opt.mix) throw Error("export", "--type cannot be combined with --target-bpw/--target-size");
  if (src.config.tie_embeddings)
    throw Error("export", src.path + ": --target-* for models with tied embeddings is not supported yet");
  const int64_t target = budget_target_bytes(a.budget, src.config, "export");
  MeasureOptions mo = gguf_measure_options(opt.method, split_list(a.budget.candidates), split_list(a.budget.embed_candidates));
  mo.calibration = a.calibration;
  mo.progress = opt.progress;
  print_allocation(allocate_gguf(budget_measurement(a.budget, mo, src, tok), src, tok, target, opt));
}

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
  if (r.calibrated.empty()) return;
  double sum = 0;
  const CalibratedTensorReport* worst = &r.calibrated.front();
  for (const CalibratedTensorReport& t : r.calibrated) {
    sum += t.rel_output_error;
    if (t.rel_output_error > worst->rel_output_error) worst = &t;
  }
  std::printf("calibration: %lld windows x %lld tokens; relative output error of the %zu linears on "
              "it: mean %.5f, worst %.5f (%s, %s)\n",
              static_cast<long long>(r.calib_windows), static_cast<long long>(r.calib_window_len),
              r.calibrated.size(), sum / static_cast<double>(r.calibrated.size()), worst->rel_output_error,
              worst->canonical.c_str(), ggml_type_label(worst->type));
}

void run_hf_export(const ExportArgs& a) {
  HfQuantExportOptions opt;
  opt.format = parse_hf_quant_format(a.format);
  if (!a.type.empty()) throw Error("export", "--type applies to --format gguf only");
  if (a.budget.given()) throw Error("export", "--target-bpw/--target-size apply to --format gguf only");
  if (a.method != "rtn")
    throw Error("export", "--method applies to --format gguf only (" + a.format + " keeps the .lowbit codes)");
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

// --format gguf-lora: the --lora adapter as a llama.cpp GGUF adapter for --model's architecture.
void run_lora_export(const ExportArgs& a) {
  if (a.lora.empty()) throw Error("export", "--format gguf-lora needs --lora DIR (a PEFT adapter directory)");
  const ModelSource src = open_model_source(a.model);
  const LoraAdapter ad = load_peft_adapter(a.lora, src.config);
  export_gguf_lora(ad, src.config, a.name.empty() ? std::filesystem::path(a.lora).filename().string() : a.name, a.out);
  std::printf("wrote %s: LoRA r=%lld on %zu projections (GGUF adapter; llama.cpp --lora)\n", a.out.c_str(),
              static_cast<long long>(ad.config().rank), ad.params().size());
}

void run_export(const ExportArgs& a) {
  if (a.format == "gptq" || a.format == "awq" || a.format == "compressed-tensors" || a.format == "compressed-tensors-w8a8")
    return run_hf_export(a);
  if (a.format == "gguf-lora") return run_lora_export(a);
  if (!a.lora.empty()) throw Error("export", "--lora applies to --format gguf-lora (to merge an adapter, use lowbit merge)");
  if (a.format != "gguf")
    throw Error("export", "unknown --format '" + a.format + "' (supported: gguf, gguf-lora, gptq, awq, compressed-tensors, compressed-tensors-w8a8)");
  GgufExportOptions opt;
  if (!a.type.empty()) parse_export_type(a.type, opt);
  opt.name = a.name;
  opt.method = parse_gguf_method(a.method);
  opt.calibration = a.calibration;
  const auto t0 = std::chrono::steady_clock::now();
  opt.progress = [t0](int64_t done, int64_t total, const std::string& what) {
    progress_eta(done, total, what, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
  apply_threads(a.threads);
  const ModelSource src = open_model_source(a.model);
  const auto tok = load_tokenizer_for(src, a.tokenizer);
  if (a.budget.given() || !a.budget.measurement.empty()) plan_gguf_to_budget(a, src, *tok, opt);
  print_summary(export_gguf(src, *tok, opt, a.out), a.out);
}

}  // namespace

void add_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "write a model in another tool's format: GGUF for llama.cpp (or a LoRA adapter as a GGUF adapter), or a Hugging Face GPTQ / AWQ / "
      "compressed-tensors checkpoint directory for transformers, vLLM, AutoGPTQ, AutoAWQ");
  cmd->add_option("-m,--model", a->model, ".lowbit file, HF directory, .gguf or llama2.c .bin")
      ->required();
  cmd->add_option("--format", a->format,
                  "gguf (default); gguf-lora (the --lora adapter as a llama.cpp GGUF adapter); gptq (int2/3/4/8, fp16 scales, in/out multiples of 32); awq "
                  "(int4, group dividing the input size); compressed-tensors (pack-quantized int4/int8); compressed-tensors-w8a8 "
                  "(int-quantized int8:gc weights with dynamic per-token int8 activations: vLLM's W8A8, e.g. after "
                  "quantize -r gptq:int8:gc:smooth). "
                  "The HF formats need a quantized model (.lowbit) and keep its codes exactly; "
                  "nf4/fp4/fp8/ternary, :dq and other grids are refused")
      ->check(CLI::IsMember({"gguf", "gguf-lora", "gptq", "awq", "compressed-tensors", "compressed-tensors-w8a8"}));
  cmd->add_option("-o,--out", a->out, "output file (gguf) or new/empty directory (gptq, awq, compressed-tensors[-w8a8])")
      ->required();
  cmd->add_option("--type", a->type,
                  ggml_type_list() +
                      " (that type for every matrix; the output projection stays >= 6 bits), or llama.cpp's mixes "
                  "Q3_K_M, Q4_K_M, Q5_K_M (note: llama-quantize's plain 'Q3_K'/'Q4_K'/'Q5_K' mean "
                  "these mixes). K-quant rows not a multiple of 256 fall back to "
                  "Q8_0/Q5_1/Q5_0/Q4_0 as llama.cpp does (default: Q4_0 for int4:g32 models, Q8_0 "
                  "for int8:g32, F16 for float models)");
  cmd->add_option("--method", a->method,
                  "how a float model's block codes are chosen: rtn (default: per-block error "
                  "search, no data), imatrix (the search weighted by calibration activations), "
                  "gptq (GPTQ error feedback on the imatrix-fitted block scales); imatrix/gptq run "
                  "the calibration text through the model layer by layer")
      ->transform(CLI::IsMember({"rtn", "imatrix", "gptq"}, CLI::ignore_case));
  add_calibration_options(*cmd, &a->calibration, "--method imatrix/gptq and --target-*");
  add_budget_options(*cmd, &a->budget,
                     "default Q3_K,Q4_0,IQ4_NL,Q4_K,Q5_0,Q5_K,Q6_K,Q8_0; embeddings also F16; codes by --method, "
                     "gptq recommended");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer file (default: the model's own)");
  cmd->add_option("--name", a->name, "general.name (default: the model's file name)");
  cmd->add_option("--lora", a->lora, "with --format gguf-lora: the PEFT adapter directory to convert for --model");
  add_threads_option(*cmd, &a->threads);
  cmd->callback([a, cmd] {
    for (const char* flag : {"--calib", "--calib-windows", "--calib-len", "--seed"})
      if (cmd->count(flag) && a->method == "rtn" && !a->budget.given())
        throw Error("export", std::string(flag) + " applies to --method imatrix or gptq (or --target-*) only");
    run_export(*a);
  });
}

}  // namespace lowbit::cli
