// Tokenizer blobs as stored in .lowbit files (tokenizer_from_blob): byte 0 picks the kind
// (sentencepiece, tiktoken, spm-vocab JSON, llama2c, hf-bpe, an unknown kind), the
// rest is the blob's bytes.
#include "exercise_tokenizer.h"
#include "tokenizer/load.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  static const char* const kKinds[] = {"sentencepiece", "tiktoken", "spm-vocab", "llama2c",
                                       "hf-bpe", "bogus"};
  if (size < 1) return 0;
  const TokenizerBlob blob{kKinds[data[0] % std::size(kKinds)],
                           std::string(reinterpret_cast<const char*>(data) + 1, size - 1)};
  fuzz::run_parser([&] {
    const auto tok = tokenizer_from_blob(blob, "fuzz blob");
    fuzz::exercise_tokenizer(*tok, std::string_view(blob.bytes).substr(0, 64));
  });
  return 0;
}
