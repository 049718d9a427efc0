#include "export/gguf_vocab.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "base/error.h"
#include "base/json_depth.h"
#include "tokenizer/blob_fields.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/llama2c_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/spm_vocab_json.h"
#include "tokenizer/string_map.h"
#include "tokenizer/tiktoken_tokenizer.h"

namespace lowbit {

namespace {

using json = nlohmann::json;

constexpr const char* kComp = "export";

[[noreturn]] void fail(const std::string& origin, const std::string& what) {
  throw Error(kComp, origin + ": " + what);
}

// ---- SentencePiece-style ("llama") --------------------------------------------------------

SpmVocab spm_vocab_of_blob(const TokenizerBlob& blob, const std::string& origin) {
  if (blob.kind == "sentencepiece") return sentencepiece_vocab_from_bytes(blob.bytes, origin);
  if (blob.kind == "spm-vocab") return spm_vocab_from_json(blob.bytes, origin).vocab;
  LOWBIT_ASSERT(blob.kind == "llama2c");
  int32_t vocab_size = 0;
  const std::string_view file = split_blob_fields(blob.bytes, {&vocab_size, 1}, origin);
  return parse_llama2c_vocab(file, vocab_size, origin);
}

void pad_spm(SpmVocab& v, int64_t vocab_size) {
  for (auto i = static_cast<int64_t>(v.pieces.size()); i < vocab_size; ++i) {
    v.pieces.push_back("<unused" + std::to_string(i) + ">");
    v.scores.push_back(0.0f);
    v.types.push_back(kTokenUnused);
  }
}

void add_spm(GgufWriter& w, const SpmVocab& v) {
  w.add("tokenizer.ggml.model", GgufMeta::string("llama"));
  w.add("tokenizer.ggml.tokens", GgufMeta::strings(v.pieces));
  w.add("tokenizer.ggml.scores", GgufMeta::f32s(v.scores));
  w.add("tokenizer.ggml.token_type", GgufMeta::i32s(v.types));
  if (v.bos_id >= 0) w.add("tokenizer.ggml.bos_token_id", GgufMeta::u32(v.bos_id));
  if (v.eos_id >= 0) w.add("tokenizer.ggml.eos_token_id", GgufMeta::u32(v.eos_id));
  if (v.unk_id >= 0) w.add("tokenizer.ggml.unknown_token_id", GgufMeta::u32(v.unk_id));
  w.add("tokenizer.ggml.add_bos_token", GgufMeta::boolean(v.bos_id >= 0));
  w.add("tokenizer.ggml.add_eos_token", GgufMeta::boolean(false));
  w.add("tokenizer.ggml.add_space_prefix", GgufMeta::boolean(v.add_dummy_prefix));
}

// ---- byte-level BPE ("gpt2") --------------------------------------------------------------

// convert_hf_to_gguf.py's does_token_look_special, for the text forms byte-level vocabs use.
bool looks_special(const std::string& t) {
  return (t.starts_with("<|") && t.ends_with("|>")) || t == "<pad>" || t == "<mask>";
}

// Ids in [0, n) with no token become "[PAD<id>]" unused tokens; n grows to vocab_size.
void pad_bpe(BpeVocab& v, int64_t vocab_size) {
  v.tokens.resize(std::max<size_t>(v.tokens.size(), vocab_size));
  v.types.resize(v.tokens.size(), kTokenUnused);
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (v.tokens[i].empty()) {
      v.tokens[i] = "[PAD" + std::to_string(i) + "]";
      v.types[i] = kTokenUnused;
    }
  }
}

void check_unique(const BpeVocab& v, const std::string& origin) {
  std::unordered_set<std::string_view> seen;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (!seen.insert(v.tokens[i]).second)
      fail(origin, "token '" + v.tokens[i] + "' (id " + std::to_string(i) +
                       ") appears twice; llama.cpp needs distinct token texts");
  }
}

// add_bos/add_eos from an HF post_processor (see gguf_vocab.h).
void template_flags(const json& pp, bool& add_bos, bool& add_eos) {
  if (!pp.is_object()) return;
  const std::string type = pp.value("type", std::string());
  if (type == "Sequence") {
    for (const json& p : pp.value("processors", json::array())) template_flags(p, add_bos, add_eos);
  } else if (type == "TemplateProcessing") {
    const json& single = pp.at("single");
    if (!single.empty() && single.front().contains("SpecialToken")) add_bos = true;
    if (single.size() > 1 && single.back().contains("SpecialToken")) add_eos = true;
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    add_bos = add_eos = true;
  }
}

std::string merge_text(const json& m, const std::string& origin) {
  std::string l, r;
  if (m.is_string()) {
    const std::string s = m.get<std::string>();
    const size_t sp = s.find(' ', 1);
    if (sp == std::string::npos) fail(origin, "malformed merge '" + s + "'");
    l = s.substr(0, sp), r = s.substr(sp + 1);
  } else {
    l = m.at(0).get<std::string>(), r = m.at(1).get<std::string>();
  }
  if (l.find(' ') != std::string::npos || r.find(' ') != std::string::npos)
    fail(origin, "merge '" + l + "' + '" + r + "' has a space in a token; GGUF cannot store it");
  return l + " " + r;
}

void add_hf_tokens(const json& root, BpeVocab& v, const std::string& origin) {
  auto put = [&](int64_t id, const std::string& text, int32_t type) {
    if (static_cast<size_t>(id) >= v.tokens.size()) v.tokens.resize(id + 1), v.types.resize(id + 1);
    v.tokens[id] = text;
    v.types[id] = type;
  };
  for (const auto& [text, id] : root.at("model").at("vocab").items())
    put(id.get<int64_t>(), text, kTokenNormal);
  for (const json& t : root.value("added_tokens", json::array())) {
    const std::string content = t.at("content").get<std::string>();
    if (t.value("lstrip", false) || t.value("rstrip", false))
      fail(origin, "added token '" + content +
                       "' strips whitespace (lstrip/rstrip), which "
                       "llama.cpp's gpt2 vocabulary does not do");
    const bool control = t.value("special", false) || looks_special(content);
    put(t.at("id").get<int64_t>(), content, control ? kTokenControl : kTokenUserDefined);
  }
}

void add_hf_specials(const json& root, BpeVocab& v) {
  const json& model = root.at("model");
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const std::string unk = model["unk_token"].get<std::string>();
    const auto it = std::find(v.tokens.begin(), v.tokens.end(), unk);
    if (it != v.tokens.end()) v.unk_id = static_cast<int32_t>(it - v.tokens.begin());
  }
  const json& padding = root.value("padding", json());
  if (padding.is_object() && padding.contains("pad_id"))
    v.pad_id = padding["pad_id"].get<int32_t>();
  template_flags(root.value("post_processor", json()), v.add_bos, v.add_eos);
  v.add_bos = v.add_bos && v.bos_id >= 0;
  v.add_eos = v.add_eos && v.eos_id >= 0;
}

BpeVocab hf_bpe_vocab(const json& root, int32_t bos, int32_t eos, const std::string& origin) {
  const json& model = root.at("model");
  if (model.value("byte_fallback", false))
    fail(origin, "byte_fallback BPE cannot be written as a GGUF gpt2 vocabulary");
  BpeVocab v;
  const json pre = root.value("pre_tokenizer", json());
  const bool ignore_merges = model.value("ignore_merges", false);
  v.pre = gguf_bpe_pre_name(pre, ignore_merges);
  if (v.pre.empty()) {
    fail(origin, "the tokenizer's pre-tokenizer " + pre.dump() + " (ignore_merges " +
                     (ignore_merges ? "true" : "false") +
                     ") is none of the llama.cpp pre-tokenizers lowbit can name (" +
                     gguf_bpe_pre_names() + "); llama.cpp would split text differently");
  }
  add_hf_tokens(root, v, origin);
  for (const json& m : model.at("merges")) v.merges.push_back(merge_text(m, origin));
  v.bos_id = bos, v.eos_id = eos;
  add_hf_specials(root, v);
  return v;
}

BpeVocab hf_bpe_vocab(const TokenizerBlob& blob, const std::string& origin) {
  int32_t ids[2] = {};  // bos, eos
  const std::string_view text = split_blob_fields(blob.bytes, ids, origin);
  check_json_depth(text, "export", origin + ": tokenizer.json");
  try {
    return hf_bpe_vocab(json::parse(text), ids[0], ids[1], origin);
  } catch (const json::exception& e) {
    fail(origin, std::string("unexpected tokenizer.json structure: ") + e.what());
  }
}

BpeVocab tiktoken_vocab(const Tokenizer& tok, const TokenizerBlob& blob,
                        const std::string& origin) {
  const std::vector<std::string> ranks = parse_tiktoken_ranks(blob.bytes, origin);
  BpeVocab v;
  v.pre = "llama-bpe";  // TiktokenTokenizer splits with kLlama3Pattern, whole-token words first
  for (const std::string& b : ranks) v.tokens.push_back(bytes_to_byte_level(b));
  v.types.assign(v.tokens.size(), kTokenNormal);
  const auto n_special = static_cast<size_t>(tok.vocab_size()) - ranks.size();
  if (n_special > 0) {
    const std::vector<std::string>& names = llama3_special_tokens();
    LOWBIT_ASSERT(n_special == names.size());
    v.tokens.insert(v.tokens.end(), names.begin(), names.end());
    v.types.resize(v.tokens.size(), kTokenControl);
  }
  v.merges = tiktoken_merges(ranks);
  v.bos_id = tok.bos_id(), v.eos_id = tok.eos_id();
  v.add_bos = v.bos_id >= 0;
  return v;
}

void add_bpe(GgufWriter& w, const BpeVocab& v) {
  w.add("tokenizer.ggml.model", GgufMeta::string("gpt2"));
  w.add("tokenizer.ggml.pre", GgufMeta::string(v.pre));
  w.add("tokenizer.ggml.tokens", GgufMeta::strings(v.tokens));
  w.add("tokenizer.ggml.token_type", GgufMeta::i32s(v.types));
  w.add("tokenizer.ggml.merges", GgufMeta::strings(v.merges));
  if (v.bos_id >= 0) w.add("tokenizer.ggml.bos_token_id", GgufMeta::u32(v.bos_id));
  if (v.eos_id >= 0) w.add("tokenizer.ggml.eos_token_id", GgufMeta::u32(v.eos_id));
  if (v.unk_id >= 0) w.add("tokenizer.ggml.unknown_token_id", GgufMeta::u32(v.unk_id));
  if (v.pad_id >= 0) w.add("tokenizer.ggml.padding_token_id", GgufMeta::u32(v.pad_id));
  w.add("tokenizer.ggml.add_bos_token", GgufMeta::boolean(v.add_bos));
  w.add("tokenizer.ggml.add_eos_token", GgufMeta::boolean(v.add_eos));
}

void check_size(size_t n_tokens, int64_t vocab_size, const std::string& origin) {
  if (static_cast<int64_t>(n_tokens) > vocab_size)
    fail(origin, "the tokenizer has " + std::to_string(n_tokens) + " pieces but the model only " +
                     std::to_string(vocab_size));
}

}  // namespace

std::vector<std::string> tiktoken_merges(const std::vector<std::string>& token_bytes) {
  StringMap<int32_t> rank;
  rank.reserve(token_bytes.size());
  std::vector<std::string> text;  // [n] byte-level text
  text.reserve(token_bytes.size());
  for (size_t i = 0; i < token_bytes.size(); ++i) {
    rank.emplace(token_bytes[i], static_cast<int32_t>(i));
    text.push_back(bytes_to_byte_level(token_bytes[i]));
  }
  std::vector<std::string> out;
  std::vector<std::pair<int32_t, int32_t>> splits;  // (left rank, right rank)
  for (const std::string& t : token_bytes) {
    splits.clear();
    const std::string_view tv = t;
    for (size_t cut = 1; cut < tv.size(); ++cut) {
      const int32_t l = find_or(rank, tv.substr(0, cut), -1);
      if (l < 0) continue;
      const int32_t r = find_or(rank, tv.substr(cut), -1);
      if (r >= 0) splits.emplace_back(l, r);
    }
    std::sort(splits.begin(), splits.end());
    for (const auto& [l, r] : splits) out.push_back(text[l] + " " + text[r]);
  }
  return out;
}

GgufVocab gguf_vocab_of(const Tokenizer& tok, int64_t vocab_size, const std::string& origin) {
  check_size(static_cast<size_t>(tok.vocab_size()), vocab_size, origin);  // before parsing
  const TokenizerBlob blob = tok.to_blob();
  const std::string where = origin + ": " + blob.kind + " tokenizer";
  if (blob.kind == "hf-bpe" || blob.kind == "tiktoken") {
    BpeVocab v =
        blob.kind == "hf-bpe" ? hf_bpe_vocab(blob, where) : tiktoken_vocab(tok, blob, where);
    check_size(v.tokens.size(), vocab_size, origin);
    pad_bpe(v, vocab_size);
    check_unique(v, where);
    return v;
  }
  if (blob.kind != "sentencepiece" && blob.kind != "spm-vocab" && blob.kind != "llama2c")
    fail(where, "this tokenizer kind cannot be written to GGUF");
  SpmVocab v = spm_vocab_of_blob(blob, where);
  check_size(v.pieces.size(), vocab_size, origin);
  pad_spm(v, vocab_size);
  return v;
}

void add_tokenizer_metadata(GgufWriter& w, const GgufVocab& v) {
  if (const auto* spm = std::get_if<SpmVocab>(&v))
    add_spm(w, *spm);
  else
    add_bpe(w, std::get<BpeVocab>(v));
}

void add_tokenizer_metadata(GgufWriter& w, const Tokenizer& tok, int64_t vocab_size,
                            const std::string& origin) {
  add_tokenizer_metadata(w, gguf_vocab_of(tok, vocab_size, origin));
}

}  // namespace lowbit
