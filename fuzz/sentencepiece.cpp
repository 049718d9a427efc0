// SentencePiece .model protobufs: lowbit's own vocab reader (sentencepiece_proto) and the
// tokenizer built on it, run through encode/decode.
#include "exercise_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  fuzz::run_parser([&] { (void)sentencepiece_vocab_from_bytes(bytes, "fuzz tokenizer.model"); });
  fuzz::run_parser([&] {
    const auto tok = sentencepiece_tokenizer_from_bytes(bytes, "fuzz tokenizer.model");
    fuzz::exercise_tokenizer(*tok, std::string_view(bytes).substr(0, 64));
  });
  return 0;
}
