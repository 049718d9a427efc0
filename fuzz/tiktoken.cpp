// tiktoken rank files ("<base64 token> <rank>" lines) and the Llama-3 tokenizer built on them.
#include "exercise_tokenizer.h"
#include "tokenizer/tiktoken_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::run_parser([&] { (void)parse_tiktoken_ranks(text, "fuzz tokenizer.model"); });
  fuzz::run_parser([&] {
    const auto tok = tiktoken_tokenizer_from_bytes(text, "fuzz tokenizer.model");
    fuzz::exercise_tokenizer(*tok, std::string_view(text).substr(0, 64));
  });
  return 0;
}
