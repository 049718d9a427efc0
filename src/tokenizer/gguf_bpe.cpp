#include "tokenizer/gguf_bpe.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "base/error.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/spm_vocab.h"
#include "tokenizer/tiktoken_tokenizer.h"

namespace lowbit {

namespace {

using json = nlohmann::json;

struct KnownPre {
  std::string name;
  json pre_tokenizer;  // canonical form (see canonical())
  bool ignore_merges;
};

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", use_regex}};
}

const std::vector<KnownPre>& known_pres() {
  static const std::vector<KnownPre> table = [] {
    const json digits = {{"type", "Digits"}, {"individual_digits", true}};
    const json llama3_split = {{"type", "Split"},
                               {"pattern", {{"Regex", kLlama3Pattern}}},
                               {"behavior", "Isolated"},
                               {"invert", false}};
    auto seq = [](json a, json b) {
      return json{{"type", "Sequence"}, {"pretokenizers", json::array({a, b})}};
    };
    return std::vector<KnownPre>{
        {"gpt-2", byte_level(true), false},
        {"smollm", seq(digits, byte_level(true)), false},
        {"llama-bpe", seq(llama3_split, byte_level(false)), true},
    };
  }();
  return table;
}

// The fields of an HF pre_tokenizer that decide how text is split, with HF's defaults filled in;
// nested Sequences flattened, one-step Sequences unwrapped. Unknown types are kept as they are
// (and so match nothing in the table).
json canonical(const json& j) {
  if (!j.is_object()) return j;
  const std::string type = j.value("type", std::string());
  if (type == "Sequence") {
    json steps = json::array();
    for (const json& s : j.at("pretokenizers")) {
      json c = canonical(s);
      if (c.is_object() && c.value("type", std::string()) == "Sequence") {
        for (const json& x : c.at("pretokenizers")) steps.push_back(x);
      } else if (!c.is_null()) {
        steps.push_back(std::move(c));
      }
    }
    if (steps.empty()) return nullptr;
    if (steps.size() == 1) return steps[0];
    return {{"type", "Sequence"}, {"pretokenizers", std::move(steps)}};
  }
  if (type == "ByteLevel") {
    return {{"type", type},
            {"add_prefix_space", j.value("add_prefix_space", true)},
            {"use_regex", j.value("use_regex", true)}};
  }
  if (type == "Digits")
    return {{"type", type}, {"individual_digits", j.value("individual_digits", false)}};
  if (type == "Split") {
    return {{"type", type},
            {"pattern", j.at("pattern")},
            {"behavior", j.value("behavior", std::string("Isolated"))},
            {"invert", j.value("invert", false)}};
  }
  return j;
}

// The entry for a tokenizer.ggml.pre value; llama.cpp also reads "llama3" and "llama-v3" as
// "llama-bpe".
const KnownPre* find_pre(std::string_view name) {
  if (name == "llama3" || name == "llama-v3") name = "llama-bpe";
  for (const KnownPre& k : known_pres())
    if (k.name == name) return &k;
  return nullptr;
}

[[noreturn]] void fail(std::string_view origin, const std::string& what) {
  throw Error("tokenizer", std::string(origin) + ": " + what);
}

// s as a JSON string literal. s must be UTF-8 (the JSON parser rejects anything else).
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

// The "vocab" and "added_tokens" members of the tokenizer.json for v, without brackets.
void token_members(const BpeVocab& v, std::string_view origin, std::string& vocab,
                   std::string& added) {
  std::unordered_set<std::string_view> seen;
  seen.reserve(v.tokens.size());
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    const std::string& t = v.tokens[i];
    if (!seen.insert(t).second)
      fail(origin, "token " + std::to_string(i) + " '" + t + "' appears twice in the vocabulary");
    const int32_t type = v.types[i];
    if (type == kTokenUnused) continue;
    if (t.empty()) fail(origin, "token " + std::to_string(i) + " is empty");
    if (type == kTokenControl || type == kTokenUserDefined) {
      added += added.empty() ? "{\"id\":" : ",{\"id\":";
      added += std::to_string(i) + ",\"content\":";
      append_json_string(added, t);
      added += type == kTokenControl ? ",\"special\":true}" : ",\"special\":false}";
    } else {
      if (!vocab.empty()) vocab += ',';
      append_json_string(vocab, t);
      vocab += ':' + std::to_string(i);
    }
  }
}

std::string merge_members(const BpeVocab& v, std::string_view origin) {
  std::string out;
  for (size_t i = 0; i < v.merges.size(); ++i) {
    const std::string& m = v.merges[i];
    const size_t sp = m.find(' ', 1);  // as llama.cpp splits it
    if (sp == std::string::npos || sp + 1 >= m.size() || m.find(' ', sp + 1) != std::string::npos)
      fail(origin, "merge " + std::to_string(i) + " '" + m + "' is not \"left right\"");
    if (i) out += ',';
    append_json_string(out, m);
  }
  return out;
}

// A TemplateProcessing that adds v's BOS / EOS as v.add_bos / v.add_eos say (null when neither),
// so the tokenizer.json keeps those flags (export/gguf_vocab.h reads them back from it).
json post_processor(const BpeVocab& v) {
  auto special = [&](int32_t id) { return id >= 0 && static_cast<size_t>(id) < v.tokens.size(); };
  const bool bos = v.add_bos && special(v.bos_id), eos = v.add_eos && special(v.eos_id);
  if (!bos && !eos) return nullptr;
  json single = json::array(), specials = json::object();
  auto add = [&](int32_t id) {
    const std::string& t = v.tokens[id];
    single.push_back({{"SpecialToken", {{"id", t}, {"type_id", 0}}}});
    specials[t] = {{"id", t}, {"ids", {id}}, {"tokens", {t}}};
  };
  if (bos) add(v.bos_id);
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (eos) add(v.eos_id);
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", single}, {"special_tokens", specials}};
}

// The tokenizer.json text for v (written directly: a Llama-3 vocabulary has 280k merges).
std::string tokenizer_json(const BpeVocab& v, const KnownPre& pre, std::string_view origin) {
  std::string vocab, added;
  token_members(v, origin, vocab, added);
  json head = {{"version", "1.0"},
               {"normalizer", nullptr},
               {"pre_tokenizer", pre.pre_tokenizer},
               {"post_processor", post_processor(v)},
               {"decoder", {{"type", "ByteLevel"}}}};
  if (v.pad_id >= 0 && static_cast<size_t>(v.pad_id) < v.tokens.size())
    head["padding"] = {{"pad_id", v.pad_id}, {"pad_token", v.tokens[v.pad_id]}};
  std::string out = head.dump();
  out.pop_back();  // the closing brace
  out += ",\"added_tokens\":[" + added + "],\"model\":{\"type\":\"BPE\",\"ignore_merges\":";
  out += pre.ignore_merges ? "true" : "false";
  out += ",\"byte_fallback\":false,\"fuse_unk\":false,\"unk_token\":";
  if (v.unk_id >= 0 && static_cast<size_t>(v.unk_id) < v.tokens.size())
    append_json_string(out, v.tokens[v.unk_id]);
  else
    out += "null";
  out += ",\"vocab\":{" + vocab + "},\"merges\":[" + merge_members(v, origin) + "]}}";
  return out;
}

}  // namespace

std::string gguf_bpe_pre_name(const json& pre_tokenizer, bool ignore_merges) {
  json c;
  try {
    c = canonical(pre_tokenizer);
  } catch (const json::exception&) {
    return "";
  }
  for (const KnownPre& k : known_pres())
    if (k.ignore_merges == ignore_merges && k.pre_tokenizer == c) return k.name;
  return "";
}

std::string gguf_bpe_pre_names() {
  std::string s;
  for (const KnownPre& k : known_pres()) s += (s.empty() ? "" : ", ") + k.name;
  return s;
}

std::unique_ptr<Tokenizer> make_gguf_bpe_tokenizer(const BpeVocab& v, std::string_view origin) {
  const KnownPre* pre = find_pre(v.pre);
  if (!pre) {
    fail(origin, "GGUF pre-tokenizer '" + v.pre + "' is not supported (supported: " +
                     gguf_bpe_pre_names() + "); pass --tokenizer");
  }
  if (v.tokens.empty() || v.types.size() != v.tokens.size())
    fail(origin, "GGUF tokens and token types are empty or disagree in size");
  std::string text = tokenizer_json(v, *pre, origin);
  return hf_tokenizer_from_bytes(std::move(text), v.bos_id, v.eos_id, origin);
}

}  // namespace lowbit
