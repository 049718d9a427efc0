#include "serve/chat_prompt.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/error.h"
#include "base/json_depth.h"
#include "io/gguf.h"

namespace lowbit {

namespace fs = std::filesystem;
using nlohmann::json;

const char* const kDefaultChatTemplate =
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

namespace {

constexpr size_t kMaxTemplateFile = 1 << 20;

std::string read_small_file(const fs::path& p, const std::string& what) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error("serve", "cannot read " + what + " " + p.string());
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (s.size() > kMaxTemplateFile) throw Error("serve", what + " " + p.string() + " is larger than 1 MiB");
  return s;
}

// "x" or {"content": "x"} -> "x"; anything else -> "".
std::string token_string(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return {};
}

// tokenizer_config.json beside an HF model: the template and the bos/eos strings.
bool from_tokenizer_config(const ModelSource& src, ChatSetup& s, std::string& source) {
  fs::path dir = src.path;
  if (!fs::is_directory(dir)) dir = dir.parent_path();
  const fs::path p = dir / "tokenizer_config.json";
  if (!fs::exists(p)) return false;
  const std::string text = read_small_file(p, "tokenizer config");
  check_json_depth(text, "serve", p.string());
  const json cfg = json::parse(text, nullptr, false);
  if (!cfg.is_object()) throw Error("serve", p.string() + ": not a JSON object");
  s.bos_token = token_string(cfg.value("bos_token", json()));
  s.eos_token = token_string(cfg.value("eos_token", json()));
  const json t = cfg.value("chat_template", json());
  if (t.is_string()) source = t.get<std::string>();
  if (t.is_array())
    for (const json& e : t)
      if (e.is_object() && e.contains("name") && e["name"] == "default" && e.contains("template") &&
          e["template"].is_string())
        source = e["template"].get<std::string>();
  if (!source.empty()) s.origin = p.string();
  return !source.empty();
}

bool from_gguf(const ModelSource& src, ChatSetup& s, std::string& source) {
  if (!src.gguf) return false;
  const GgufFile& g = *src.gguf;
  if (g.has("tokenizer.ggml.tokens")) {
    const auto& tokens = g.get_string_array("tokenizer.ggml.tokens");
    auto piece = [&](const char* key) {
      const int64_t id = g.get_int_or(key, -1);
      return id >= 0 && id < static_cast<int64_t>(tokens.size()) ? tokens[id] : std::string();
    };
    s.bos_token = piece("tokenizer.ggml.bos_token_id");
    s.eos_token = piece("tokenizer.ggml.eos_token_id");
  }
  if (!g.has("tokenizer.chat_template")) return false;
  source = g.get_string("tokenizer.chat_template");
  s.origin = src.path + " (tokenizer.chat_template)";
  return true;
}

bool spm_like(const Tokenizer& tok) {
  const std::string k = tok.kind();
  return k == "sentencepiece" || k == "llama2c" || k == "gguf-llama" || k == "spm-bpe";
}

}  // namespace

ChatSetup find_chat_setup(const ModelSource& src, const Tokenizer& tok, const std::string& override_path) {
  ChatSetup s;
  std::string source;
  const bool found = from_tokenizer_config(src, s, source) || from_gguf(src, s, source);
  if (!override_path.empty()) {
    source = read_small_file(override_path, "chat template");
    s.origin = override_path;
  } else if (!found) {
    source = kDefaultChatTemplate;
    s.origin = "built-in ChatML (the model has no chat template)";
  }
  if (s.bos_token.empty() && spm_like(tok) && tok.bos_id() >= 0) s.bos_token = "<s>";
  if (s.eos_token.empty() && spm_like(tok) && tok.eos_id() >= 0) s.eos_token = "</s>";
  if (tok.eos_id() >= 0) s.end_ids.push_back(tok.eos_id());
  for (const std::string& marker : {s.eos_token, std::string("<|eot_id|>"), std::string("<|im_end|>"),
                                    std::string("<end_of_turn>"), std::string("<|end|>"), std::string("<|endoftext|>"),
                                    std::string("<|end_of_text|>")}) {
    if (marker.empty() || spm_like(tok)) continue;  // SentencePiece kinds do not parse specials
    const std::vector<int32_t> ids = tok.encode(marker, false);
    if (ids.size() == 1 && tok.token_bytes(ids[0]) == marker &&
        std::find(s.end_ids.begin(), s.end_ids.end(), ids[0]) == s.end_ids.end())
      s.end_ids.push_back(ids[0]);
  }
  try {
    s.tmpl = std::make_shared<const ChatTemplate>(source);
  } catch (const Error& e) {
    throw Error("serve", "chat template from " + s.origin + ": " + std::string(e.message()));
  }
  return s;
}

std::vector<int32_t> encode_chat_prompt(const Tokenizer& tok, const ChatSetup& s, const std::string& text) {
  if (!spm_like(tok)) return tok.encode(text, /*add_bos=*/false);
  struct Special {
    const std::string* str;
    int32_t id;
    size_t next;  // its next occurrence at or after the scan position (npos: none)
  };
  std::vector<Special> specials;
  for (const auto& [str, id] : {std::pair{&s.bos_token, tok.bos_id()}, std::pair{&s.eos_token, tok.eos_id()}})
    if (!str->empty() && id >= 0) specials.push_back({str, id, text.find(*str)});
  std::vector<int32_t> ids;
  size_t pos = 0;
  for (;;) {
    Special* first = nullptr;
    for (Special& sp : specials) {
      if (sp.next != std::string::npos && sp.next < pos) sp.next = text.find(*sp.str, pos);  // passed: look again
      if (sp.next != std::string::npos && (!first || sp.next < first->next)) first = &sp;
    }
    const size_t end = first ? first->next : text.size();
    if (end > pos) {
      const std::vector<int32_t> part = tok.encode(std::string_view(text).substr(pos, end - pos), false);
      ids.insert(ids.end(), part.begin(), part.end());
    }
    if (!first) break;
    ids.push_back(first->id);
    pos = end + first->str->size();
  }
  if (tok.bos_id() >= 0 && (ids.empty() || ids.front() != tok.bos_id())) ids.insert(ids.begin(), tok.bos_id());
  return ids;
}

}  // namespace lowbit
