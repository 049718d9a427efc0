// The .lowbit container: safetensors layout plus lowbit metadata (config, tensor index, recipe,
// rotation), every quantized matrix's parts and their format validation (validate()), low-rank
// correction parts, and the embedded tokenizer blob (parsed as its kind says).
#include "exercise_tokenizer.h"
#include "io/lowbit_file.h"
#include "io/model_source.h"
#include "tokenizer/load.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  const std::string path = fuzz::write_scratch_file("model.lowbit", data, size);
  fuzz::run_parser([&] {
    (void)is_lowbit_file(path);
    const ModelSource src = load_lowbit_model(path);
    if (!src.embedded_tokenizer.kind.empty()) {
      const TokenizerBlob blob{src.embedded_tokenizer.kind, src.embedded_tokenizer.bytes};
      const auto tok = tokenizer_from_blob(blob, path);
      fuzz::exercise_tokenizer(*tok, "");
    }
  });
  return 0;
}
