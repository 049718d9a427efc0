// GGUF: header, KV pairs (every value type, nested arrays), tensor infos, alignment and offsets,
// the typed getters and the metadata listing, and each decodable tensor's bytes through to_f32
// (so every ggml block type's decoder runs on whatever bytes the file holds). In memory: the
// GgufFile(name, bytes) constructor lets AddressSanitizer see every read.
#include "fuzz_util.h"
#include "io/gguf.h"

namespace {

void read_typed(const lowbit::GgufFile& g) {
  for (const char* key : {"general.architecture", "llama.context_length", "llama.embedding_length",
                          "general.alignment", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                          "tokenizer.ggml.token_type", "tokenizer.ggml.merges"}) {
    lowbit::fuzz::run_parser([&] { (void)g.get_string(key); });
    lowbit::fuzz::run_parser([&] { (void)g.get_int(key); });
    lowbit::fuzz::run_parser([&] { (void)g.get_float(key); });
    lowbit::fuzz::run_parser([&] { (void)g.get_bool(key); });
    lowbit::fuzz::run_parser([&] { (void)g.get_string_array(key); });
    lowbit::fuzz::run_parser([&] { (void)g.get_float_array(key); });
    lowbit::fuzz::run_parser([&] { (void)g.get_int_array(key); });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  fuzz::run_parser([&] {
    const GgufFile g("fuzz.gguf", std::vector<uint8_t>(data, data + size));
    (void)g.list_metadata();
    read_typed(g);
    for (const GgufTensorInfo& t : g.tensors()) {
      if (!t.dtype) continue;
      const TensorView v = g.view(t);
      if (v.numel() <= (int64_t{1} << 16)) (void)to_f32(v);
    }
  });
  return 0;
}
