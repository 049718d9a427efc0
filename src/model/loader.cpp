#include "model/loader.h"

#include <climits>
#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "base/mapped_file.h"
#include "io/gguf.h"
#include "io/gguf_model.h"
#include "io/hf_model.h"
#include "io/llama2c.h"
#include "io/lowbit_file.h"
#include "tokenizer/gguf_bpe.h"
#include "tokenizer/load.h"
#include "tokenizer/spm_vocab.h"

namespace lowbit {

namespace fs = std::filesystem;

namespace {

bool has_magic(const std::string& path, const char* magic) {
  require_regular_file(path, "load");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char buf[4] = {};
  const size_t n = std::fread(buf, 1, 4, f);
  std::fclose(f);
  return n == 4 && std::memcmp(buf, magic, 4) == 0;
}

// A token id of the GGUF vocabulary (uint32 in the file): `fallback` when absent; ids beyond
// int32 are refused rather than truncated.
int32_t token_id(const GgufFile& g, const std::string& key, int32_t fallback, const std::string& path) {
  if (!g.has(key)) return fallback;
  const int64_t id = g.get_int(key);
  if (id < -1 || id > INT32_MAX) throw Error("tokenizer", path + ": " + key + " " + std::to_string(id) + " is out of range");
  return static_cast<int32_t>(id);
}

// A GGUF "gpt2" vocabulary (tokenizer.ggml.*) as a byte-level BPE tokenizer (gguf_bpe.h).
std::unique_ptr<Tokenizer> gguf_bpe_tokenizer(const GgufFile& g, const std::string& path) {
  BpeVocab v;
  v.tokens = g.get_string_array("tokenizer.ggml.tokens");
  if (g.has("tokenizer.ggml.token_type")) {
    for (int64_t t : g.get_int_array("tokenizer.ggml.token_type")) v.types.push_back(static_cast<int32_t>(t));
  } else {
    v.types.assign(v.tokens.size(), kTokenNormal);
  }
  if (g.has("tokenizer.ggml.merges")) v.merges = g.get_string_array("tokenizer.ggml.merges");
  v.pre = g.has("tokenizer.ggml.pre") ? g.get_string("tokenizer.ggml.pre") : "";
  v.bos_id = token_id(g, "tokenizer.ggml.bos_token_id", -1, path);
  v.eos_id = token_id(g, "tokenizer.ggml.eos_token_id", -1, path);
  v.unk_id = token_id(g, "tokenizer.ggml.unknown_token_id", -1, path);
  v.pad_id = token_id(g, "tokenizer.ggml.padding_token_id", -1, path);
  v.add_bos = g.has("tokenizer.ggml.add_bos_token") && g.get_bool("tokenizer.ggml.add_bos_token");
  v.add_eos = g.has("tokenizer.ggml.add_eos_token") && g.get_bool("tokenizer.ggml.add_eos_token");
  return make_gguf_bpe_tokenizer(v, path);
}

// The tokenizer a GGUF llama file embeds (tokenizer.ggml.*): a SentencePiece-style vocab
// ("llama") or a byte-level BPE one ("gpt2").
std::unique_ptr<Tokenizer> gguf_tokenizer(const GgufFile& g, const std::string& path) {
  const std::string model = g.has("tokenizer.ggml.model") ? g.get_string("tokenizer.ggml.model") : "";
  if (model == "gpt2") return gguf_bpe_tokenizer(g, path);
  if (model != "llama")
    throw Error("tokenizer", path + ": GGUF tokenizer model '" + model +
                                 "' is not supported (supported: llama, gpt2); pass --tokenizer");
  SpmVocab v;
  v.pieces = g.get_string_array("tokenizer.ggml.tokens");
  v.scores = g.has("tokenizer.ggml.scores") ? g.get_float_array("tokenizer.ggml.scores")
                                            : std::vector<float>(v.pieces.size(), 0.0f);
  if (g.has("tokenizer.ggml.token_type")) {
    for (int64_t t : g.get_int_array("tokenizer.ggml.token_type")) v.types.push_back(static_cast<int32_t>(t));
  } else {  // no types: "<0xNN>" pieces are still byte-fallback pieces
    for (const std::string& piece : v.pieces)
      v.types.push_back(parse_byte_piece(piece) >= 0 ? kTokenByte : kTokenNormal);
  }
  v.bos_id = token_id(g, "tokenizer.ggml.bos_token_id", v.bos_id, path);
  v.eos_id = token_id(g, "tokenizer.ggml.eos_token_id", v.eos_id, path);
  v.unk_id = token_id(g, "tokenizer.ggml.unknown_token_id", v.unk_id, path);
  if (g.has("tokenizer.ggml.add_space_prefix")) v.add_dummy_prefix = g.get_bool("tokenizer.ggml.add_space_prefix");
  return make_spm_bpe_tokenizer(std::move(v), "gguf-llama", path);
}

std::string find_llama2c_tokenizer(const std::string& bin_path, int64_t vocab) {
  const fs::path dir = fs::path(bin_path).parent_path();
  for (const std::string& name : {std::string("tokenizer.bin"), "tok" + std::to_string(vocab) + ".bin"}) {
    if (fs::exists(dir / name)) return (dir / name).string();
  }
  throw Error("tokenizer", bin_path + ": no tokenizer.bin or tok" + std::to_string(vocab) +
                               ".bin beside it; pass --tokenizer");
}

std::string find_hf_tokenizer(const std::string& dir) {
  for (const char* name : {"tokenizer.model", "tokenizer.json"}) {
    if (fs::exists(fs::path(dir) / name)) return (fs::path(dir) / name).string();
  }
  throw Error("tokenizer", dir + ": no tokenizer.model or tokenizer.json; pass --tokenizer");
}

std::string hf_dir_of(const std::string& path) {
  if (fs::is_directory(path)) return path;
  return fs::path(path).parent_path().string();  // a .safetensors file inside an HF directory
}

}  // namespace

ModelSource open_model_source(const std::string& path) {
  if (!fs::exists(path)) throw Error("model", path + ": no such file or directory");
  if (path.ends_with(".lowbit") || (path.ends_with(".safetensors") && is_lowbit_file(path)))
    return load_lowbit_model(path);
  if (fs::is_directory(path) || path.ends_with(".safetensors")) return load_hf_model(hf_dir_of(path));
  if (has_magic(path, "GGUF")) return load_gguf_model(path);
  if (path.ends_with(".bin")) return load_llama2c_model(path);
  throw Error("model", path + ": unrecognised model (expected an HF directory, a .gguf or a llama2.c .bin)");
}

std::unique_ptr<Tokenizer> load_tokenizer_for(const ModelSource& src, const std::string& tokenizer_path) {
  const std::string& path = src.path;
  const int64_t vocab = src.config.vocab_size;
  std::unique_ptr<Tokenizer> tok;
  if (!tokenizer_path.empty()) {
    tok = load_tokenizer_file(tokenizer_path, static_cast<int32_t>(vocab));
  } else if (src.format == "lowbit") {
    if (src.embedded_tokenizer.kind.empty())
      throw Error("tokenizer", path + ": the file carries no tokenizer; pass --tokenizer");
    tok = tokenizer_from_blob({src.embedded_tokenizer.kind, src.embedded_tokenizer.bytes}, path);
  } else if (src.format == "gguf") {
    tok = gguf_tokenizer(*src.gguf, path);
  } else if (src.format == "llama2c") {
    tok = load_tokenizer_file(find_llama2c_tokenizer(path, vocab), static_cast<int32_t>(vocab));
  } else {
    tok = load_tokenizer_file(find_hf_tokenizer(hf_dir_of(path)), static_cast<int32_t>(vocab));
  }
  if (tok->vocab_size() > vocab)
    throw Error("model", path + ": tokenizer has " + std::to_string(tok->vocab_size()) +
                             " tokens but the model only " + std::to_string(vocab));
  return tok;
}

LoadedModel load_model(const std::string& path, const std::string& tokenizer_path) {
  LoadedModel m;
  m.source = open_model_source(path);
  m.tokenizer = load_tokenizer_for(m.source, tokenizer_path);
  m.model = std::make_unique<LlamaModel>(m.source);
  return m;
}

}  // namespace lowbit
