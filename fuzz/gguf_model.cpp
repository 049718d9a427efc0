// A GGUF file opened as a model: the llama config read from its metadata, tensor-name mapping and
// shape checks, and the tokenizer its vocabulary builds (SentencePiece-style "llama" vocab or
// "gpt2" byte-level BPE), run through encode/decode. The loader takes a path: scratch file.
#include "exercise_tokenizer.h"
#include "io/model_source.h"
#include "model/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  const std::string path = fuzz::write_scratch_file("model.gguf", data, size);
  fuzz::run_parser([&] {
    const ModelSource src = open_model_source(path);
    const auto tok = load_tokenizer_for(src, "");
    fuzz::exercise_tokenizer(*tok, "");
  });
  return 0;
}
