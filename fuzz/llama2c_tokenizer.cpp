// llama2.c tokenizer.bin: u16 vocab size (the file does not store it; the model does) followed
// by the file's bytes. The parsed tokenizer is run through encode/decode.
#include "exercise_tokenizer.h"
#include "tokenizer/llama2c_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  if (size < 2) return 0;
  const int32_t vocab = data[0] | (data[1] << 8);
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 2, size - 2);
  fuzz::run_parser([&] {
    const auto tok = llama2c_tokenizer_from_bytes(bytes, vocab, "fuzz tokenizer.bin");
    fuzz::exercise_tokenizer(*tok, bytes.substr(0, 64));
  });
  return 0;
}
