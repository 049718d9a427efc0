// HF tokenizer.json (byte-level BPE, added tokens, pre-tokenizer regexes, normalizers, ...),
// parsed from memory and run through encode/decode.
#include "exercise_tokenizer.h"
#include "tokenizer/hf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::run_parser([&] {
    const auto tok = hf_tokenizer_from_bytes(text, 1, 2, "fuzz tokenizer.json");
    fuzz::exercise_tokenizer(*tok, std::string_view(text).substr(0, 64));
  });
  return 0;
}
