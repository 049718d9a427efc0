// HF config.json: the llama config (architectures, sizes, rope_scaling, ...) and its
// quantization_config block (GPTQ / AWQ / compressed-tensors), then the config's validation.
#include "fuzz_util.h"
#include "io/hf_model.h"
#include "io/hf_quantized.h"
#include "io/llama_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::run_parser([&] {
    const LlamaConfig c = parse_hf_config(text, "fuzz config.json");
    validate_llama_config(c, "fuzz config.json");
  });
  fuzz::run_parser([&] { (void)parse_hf_quant_config(text, "fuzz config.json"); });
  return 0;
}
