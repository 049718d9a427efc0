// The HF checkpoint importer with GPTQ / AWQ / compressed-tensors tensors: a model directory in
// the scratch dir holding config.json (its quantization_config picks the importer) and
// model.safetensors, loaded by load_hf_model (config, tensor mapping, unpack_hf_linear).
// Input: u16 little-endian config length, the config.json text, then the safetensors bytes.
#include "fuzz_util.h"
#include "io/hf_model.h"
#include "io/model_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  if (size < 2) return 0;
  const size_t n = std::min<size_t>(data[0] | (data[1] << 8), size - 2);
  fuzz::write_scratch_file("config.json", data + 2, n);
  fuzz::write_scratch_file("model.safetensors", data + 2 + n, size - 2 - n);
  fuzz::run_parser([&] {
    const ModelSource src = load_hf_model(fuzz::scratch_dir());
    for (const auto& [name, m] : src.quantized) (void)m.rows;
  });
  return 0;
}
