#include "tokenizer/load.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "base/error.h"
#include "base/mapped_file.h"
#include "tokenizer/base64.h"
#include "tokenizer/blob_fields.h"
#include "tokenizer/sentencepiece_proto.h"

namespace lowbit {

namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext;
}

// First line is "<base64> <decimal>".
bool looks_like_tiktoken(std::string_view head) {
  const size_t eol = head.find('\n');
  if (eol == std::string_view::npos) return false;
  std::string_view line = head.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos || sp + 1 >= line.size() || !is_base64_text(line.substr(0, sp)))
    return false;
  return std::all_of(line.begin() + sp + 1, line.end(),
                     [](unsigned char c) { return std::isdigit(c); });
}

bool looks_like_json_object(std::string_view head) {
  const size_t i = head.find_first_not_of(" \t\r\n");
  return i != std::string_view::npos && head[i] == '{';
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer_file(const std::string& path, int32_t vocab_size_hint) {
  const std::string ext = lower_extension(path);
  if (ext == ".json") return load_hf_tokenizer(path);
  if (ext == ".bin") {
    if (vocab_size_hint <= 0) {
      throw Error("tokenizer", path +
                                   ": a llama2.c tokenizer.bin does not store its vocab size; "
                                   "load it with the model (or give the vocab size)");
    }
    return load_llama2c_tokenizer(path, vocab_size_hint);
  }
  std::string head;
  {
    const MappedFile file(path);
    if (file.size() > 0)
      head.assign(reinterpret_cast<const char*>(file.data()), std::min<size_t>(file.size(), 4096));
  }
  if (looks_like_sentencepiece_model(head)) return load_sentencepiece_tokenizer(path);
  if (looks_like_tiktoken(head)) return load_tiktoken_tokenizer(path);
  if (looks_like_json_object(head)) return load_hf_tokenizer(path);
  throw Error("tokenizer", path + ": unrecognised tokenizer file");
}

std::unique_ptr<Tokenizer> tokenizer_from_blob(const TokenizerBlob& blob,
                                               const std::string& origin) {
  const std::string where = origin + ": " + blob.kind + " tokenizer blob";
  if (blob.kind == "sentencepiece") return sentencepiece_tokenizer_from_bytes(blob.bytes, where);
  if (blob.kind == "tiktoken") return tiktoken_tokenizer_from_bytes(blob.bytes, where);
  if (blob.kind == "spm-vocab") return spm_bpe_tokenizer_from_json(blob.bytes, where);
  if (blob.kind == "llama2c") {
    int32_t vocab_size = 0;
    const std::string_view file = split_blob_fields(blob.bytes, {&vocab_size, 1}, where);
    return llama2c_tokenizer_from_bytes(file, vocab_size, where);
  }
  if (blob.kind == "hf-bpe") {
    int32_t ids[2] = {};  // bos, eos
    const std::string_view json = split_blob_fields(blob.bytes, ids, where);
    return hf_tokenizer_from_bytes(std::string(json), ids[0], ids[1], where);
  }
  throw Error("tokenizer", origin + ": unknown tokenizer blob kind '" + blob.kind + "'");
}

}  // namespace lowbit
