#include "tokenizer/hf_tokenizer.h"

#include <limits>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_depth.h"
#include "base/mapped_file.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/blob_fields.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/hf_bpe_model.h"
#include "tokenizer/hf_special_ids.h"
#include "tokenizer/pre_tokenizer.h"

namespace lowbit {

namespace {

using json = nlohmann::json;

struct HfParts {
  std::unique_ptr<HfBpeModel> model;
  std::unique_ptr<PreTokenizer> pre;
  std::unique_ptr<AddedTokenMatcher> added;
  std::vector<std::string> text;  // token_bytes per id
  int32_t bos = -1, eos = -1;
  std::string json_text;  // the tokenizer.json, for to_blob()
};

class HfTokenizer final : public Tokenizer {
 public:
  explicit HfTokenizer(HfParts p) : p_(std::move(p)) {}

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    std::vector<int32_t> out;
    if (add_bos && p_.bos >= 0) out.push_back(p_.bos);
    for (const TextSegment& seg : p_.added->split(text)) {
      if (seg.id >= 0) {
        out.push_back(seg.id);
        continue;
      }
      for (const std::string& piece : p_.pre->split({std::string(seg.text)})) {
        p_.model->encode_word(bytes_to_byte_level(piece), out);
      }
    }
    return out;
  }
  std::string token_bytes(int32_t id) const override {
    return id >= 0 && id < vocab_size() ? p_.text[id] : std::string();
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(p_.text.size()); }
  int32_t bos_id() const override { return p_.bos; }
  int32_t eos_id() const override { return p_.eos; }
  std::string kind() const override { return "hf-bpe"; }
  TokenizerBlob to_blob() const override {
    return {"hf-bpe", join_blob_fields({p_.bos, p_.eos}, p_.json_text)};
  }

 private:
  HfParts p_;
};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error("tokenizer", path + ": " + what);
}

std::vector<std::pair<std::string, std::string>> parse_merges(const json& merges,
                                                              const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (const json& m : merges) {
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size() ||
          s.find(' ', sp + 1) != std::string::npos) {
        fail(path, "malformed merge '" + s + "' (want \"left right\")");
      }
      out.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2) {
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      fail(path, "malformed merge " + m.dump());
    }
  }
  return out;
}

int32_t id_from_json(const json& v, const std::string& path, const char* what) {
  const auto id = v.get<int64_t>();
  if (id < 0 || id > std::numeric_limits<int32_t>::max() - 1)
    fail(path, std::string(what) + " id out of range");
  return static_cast<int32_t>(id);
}

StringMap<int32_t> parse_vocab(const json& model, const std::string& path) {
  if (!model.contains("vocab") || !model["vocab"].is_object())
    fail(path, "model.vocab is missing or not an object");
  StringMap<int32_t> vocab;
  vocab.reserve(model["vocab"].size());
  for (const auto& [piece, id] : model["vocab"].items())
    vocab[piece] = id_from_json(id, path, "vocab");
  if (vocab.empty()) fail(path, "model.vocab is empty");
  return vocab;
}

std::unique_ptr<HfBpeModel> parse_model(const json& root, const std::string& path) {
  if (!root.contains("model") || !root["model"].is_object()) fail(path, "no \"model\" object");
  const json& model = root["model"];
  const std::string type = model.value("type", std::string("BPE"));
  if (type != "BPE") fail(path, "model.type '" + type + "' is not supported (only BPE)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && !model[key].is_null() && model[key] != "") {
      fail(path, std::string("model.") + key + " is not supported");
    }
  }
  StringMap<int32_t> vocab = parse_vocab(model, path);
  if (!model.contains("merges") || !model["merges"].is_array())
    fail(path, "model.merges is missing or not a list");
  HfBpeOptions opt;
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    opt.unk_id = find_or(vocab, model["unk_token"].get<std::string>(), -1);
  }
  opt.byte_fallback = model.value("byte_fallback", false);
  opt.fuse_unk = model.value("fuse_unk", false);
  opt.ignore_merges = model.value("ignore_merges", false);
  return std::make_unique<HfBpeModel>(std::move(vocab), parse_merges(model["merges"], path), opt,
                                      path);
}

std::vector<AddedToken> parse_added(const json& root, const std::string& path) {
  std::vector<AddedToken> out;
  if (!root.contains("added_tokens") || root["added_tokens"].is_null()) return out;
  for (const json& t : root["added_tokens"]) {
    AddedToken a;
    a.id = id_from_json(t.at("id"), path, "added token");
    a.content = t.at("content").get<std::string>();
    a.special = t.value("special", false);
    a.lstrip = t.value("lstrip", false);
    a.rstrip = t.value("rstrip", false);
    if (a.content.empty()) fail(path, "added token " + std::to_string(a.id) + " has empty content");
    out.push_back(std::move(a));
  }
  return out;
}

// The id space is sized by the largest id; ids must be nearly dense (holes up to kMaxIdGaps), so
// a file cannot make us allocate billions of entries with one large id.
constexpr int64_t kMaxIdGaps = 65536;

std::vector<std::string> token_texts(const HfBpeModel& model, const std::vector<AddedToken>& added,
                                     const std::string& path) {
  int32_t n = 0;
  for (const auto& [piece, id] : model.vocab()) n = std::max(n, id + 1);
  for (const AddedToken& a : added) n = std::max(n, a.id + 1);
  const int64_t entries = static_cast<int64_t>(model.vocab().size() + added.size());
  if (n > entries + kMaxIdGaps)
    fail(path, "token id " + std::to_string(n - 1) + " is far beyond the " + std::to_string(entries) +
                   " entries (ids must be nearly dense)");
  std::vector<std::string> text(n);
  for (const auto& [piece, id] : model.vocab()) text[id] = byte_level_to_bytes(piece);
  for (const AddedToken& a : added) text[a.id] = a.content;
  return text;
}

json parse_root(std::string_view text, const std::string& origin) {
  check_json_depth(text, "tokenizer", origin);
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    fail(origin, std::string("not valid JSON: ") + e.what());
  }
  if (!root.is_object()) fail(origin, "not a tokenizer.json (top level is not an object)");
  return root;
}

// ids: bos/eos as found (find_hf_special_ids); ids outside the vocab become -1.
HfParts build_parts(const json& root, const std::string& origin, HfSpecialIds ids) {
  if (root.contains("normalizer") && !root["normalizer"].is_null()) {
    fail(origin, "normalizer '" + root["normalizer"].value("type", std::string("?")) +
                     "' is not supported");
  }
  HfParts p;
  p.model = parse_model(root, origin);
  p.pre = make_pre_tokenizer(root.value("pre_tokenizer", json()), origin);
  if (!p.pre->is_byte_level())
    fail(origin, "only byte-level BPE tokenizers (a ByteLevel pre_tokenizer) are supported");
  std::vector<AddedToken> added = parse_added(root, origin);
  p.text = token_texts(*p.model, added, origin);
  p.added = std::make_unique<AddedTokenMatcher>(std::move(added));
  const auto n = static_cast<int32_t>(p.text.size());
  p.bos = ids.bos >= 0 && ids.bos < n ? ids.bos : -1;
  p.eos = ids.eos >= 0 && ids.eos < n ? ids.eos : -1;
  return p;
}

// Parses text; special ids come from ids_for(root) (side files, or fixed ones for a blob).
template <class IdsFn>
std::unique_ptr<Tokenizer> make_hf(std::string text, const std::string& origin, IdsFn ids_for) {
  const json root = parse_root(text, origin);
  try {
    HfParts p = build_parts(root, origin, ids_for(root));
    p.json_text = std::move(text);
    return std::make_unique<HfTokenizer>(std::move(p));
  } catch (const json::exception& e) {
    fail(origin, std::string("unexpected tokenizer.json structure: ") + e.what());
  }
}

}  // namespace

std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path) {
  return make_hf(read_text_file(path), path,
                 [&](const json& root) { return find_hf_special_ids(path, root); });
}

std::unique_ptr<Tokenizer> hf_tokenizer_from_bytes(std::string json_text, int32_t bos_id,
                                                   int32_t eos_id, std::string_view origin) {
  const std::string where(origin);
  auto tok = make_hf(std::move(json_text), where, [&](const json&) {
    return HfSpecialIds{bos_id, eos_id};
  });
  if (tok->bos_id() != bos_id || tok->eos_id() != eos_id) {
    fail(where, "bos/eos ids " + std::to_string(bos_id) + "/" + std::to_string(eos_id) +
                    " are not -1 or tokens of this vocabulary");
  }
  return tok;
}

}  // namespace lowbit
