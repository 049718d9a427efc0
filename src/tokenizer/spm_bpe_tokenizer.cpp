#include "tokenizer/spm_bpe_tokenizer.h"

#include <algorithm>
#include <array>
#include <limits>

#include "base/error.h"
#include "tokenizer/bpe_merge.h"
#include "tokenizer/spm_vocab_json.h"
#include "tokenizer/string_map.h"
#include "tokenizer/utf8.h"

namespace lowbit {

namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";       // U+2581 "▁"
constexpr std::string_view kUnknownSurface = " \xE2\x81\x87 ";  // " ⁇ ", sentencepiece default

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, from.size(), from) == 0) {
      out += to;
      i += from.size();
    } else {
      out += s[i++];
    }
  }
  return out;
}

bool is_mergeable(int32_t type) {
  return type == kTokenUndefined || type == kTokenNormal || type == kTokenUserDefined ||
         type == kTokenUnused;
}

// token_bytes of a piece (see the header).
std::string token_text(const std::string& piece, int32_t type) {
  if (type == kTokenControl) return "";
  if (type == kTokenUnknown) return std::string(kUnknownSurface);
  if (type == kTokenByte) {
    const int b = parse_byte_piece(piece);
    return b >= 0 ? std::string(1, static_cast<char>(b)) : std::string();
  }
  return replace_all(piece, kSpaceSymbol, " ");
}

class SpmBpeTokenizer final : public Tokenizer {
 public:
  SpmBpeTokenizer(SpmVocab v, std::string kind, TokenizerBlob source);

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override;
  std::string token_bytes(int32_t id) const override {
    return id >= 0 && id < vocab_size() ? text_[id] : std::string();
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(v_.pieces.size()); }
  int32_t bos_id() const override { return v_.bos_id; }
  int32_t eos_id() const override { return v_.eos_id; }
  std::string kind() const override { return kind_; }
  bool strips_leading_space() const override { return v_.add_dummy_prefix; }
  TokenizerBlob to_blob() const override {
    if (!source_.kind.empty()) return source_;
    return {"spm-vocab", spm_vocab_to_json(v_, kind_)};
  }

 private:
  std::string normalize(std::string_view text) const;
  std::vector<BpeSymbol> split_symbols(std::string_view norm) const;
  size_t match_user_defined(std::string_view rest, int32_t& id) const;
  void emit_unknown(std::string_view bytes, bool& prev_unk, std::vector<int32_t>& out) const;
  void emit_resegmented(const std::vector<BpeMergeNode>& hist, int32_t node, std::string_view norm,
                        std::vector<int32_t>& out) const;

  SpmVocab v_;
  std::string kind_;
  TokenizerBlob source_;                                // see make_spm_bpe_tokenizer
  StringMap<int32_t> mergeable_;                        // normal/user-defined/unused piece -> id
  std::array<std::vector<int32_t>, 256> user_defined_;  // by first byte: ids, longest first
  bool has_user_defined_ = false;
  std::array<int32_t, 256> byte_id_;  // byte -> "<0xNN>" token id, -1 if absent
  bool byte_fallback_ = false;
  bool has_unused_ = false;
  std::vector<std::string> text_;  // token_bytes per id
};

SpmBpeTokenizer::SpmBpeTokenizer(SpmVocab v, std::string kind, TokenizerBlob source)
    : v_(std::move(v)), kind_(std::move(kind)), source_(std::move(source)) {
  byte_id_.fill(-1);
  const auto n = static_cast<int32_t>(v_.pieces.size());
  text_.resize(n);
  for (int32_t id = 0; id < n; ++id) {
    const std::string& p = v_.pieces[id];
    const int32_t t = v_.types[id];
    text_[id] = token_text(p, t);
    if (is_mergeable(t)) mergeable_[p] = id;
    if (t == kTokenUserDefined) {
      user_defined_[static_cast<unsigned char>(p[0])].push_back(id);
      has_user_defined_ = true;
    }
    if (t == kTokenUnused) has_unused_ = true;
    if (t == kTokenByte) {
      byte_fallback_ = true;
      const int b = parse_byte_piece(p);
      if (b >= 0 && byte_id_[b] < 0) byte_id_[b] = id;
    }
  }
  for (auto& bucket : user_defined_) {
    std::stable_sort(bucket.begin(), bucket.end(), [&](int32_t a, int32_t b) {
      return v_.pieces[a].size() > v_.pieces[b].size();
    });
  }
}

std::string SpmBpeTokenizer::normalize(std::string_view text) const {
  std::string out;
  if (v_.add_dummy_prefix) out = kSpaceSymbol;
  out += replace_all(text, " ", kSpaceSymbol);
  return out;
}

size_t SpmBpeTokenizer::match_user_defined(std::string_view rest, int32_t& id) const {
  // Longest first, so the first hit is the longest match.
  for (int32_t u : user_defined_[static_cast<unsigned char>(rest[0])]) {
    const std::string& p = v_.pieces[u];
    if (rest.substr(0, p.size()) == p) {
      id = mergeable_.find(p)->second;
      return p.size();
    }
  }
  return 0;
}

std::vector<BpeSymbol> SpmBpeTokenizer::split_symbols(std::string_view norm) const {
  std::vector<BpeSymbol> syms;
  syms.reserve(norm.size());
  size_t i = 0;
  while (i < norm.size()) {
    BpeSymbol s;
    s.start = static_cast<uint32_t>(i);
    size_t len = !has_user_defined_ ? 0 : match_user_defined(norm.substr(i), s.id);
    if (len > 0) {
      s.frozen = true;
    } else {
      len = utf8_char_len(norm.substr(i));
      s.id = find_or(mergeable_, norm.substr(i, len), -1);
    }
    s.len = static_cast<uint32_t>(len);
    syms.push_back(s);
    i += len;
  }
  return syms;
}

void SpmBpeTokenizer::emit_unknown(std::string_view bytes, bool& prev_unk,
                                   std::vector<int32_t>& out) const {
  if (byte_fallback_) {
    for (char c : bytes) {
      const int32_t id = byte_id_[static_cast<unsigned char>(c)];
      if (id >= 0)
        out.push_back(id);
      else if (v_.unk_id >= 0)
        out.push_back(v_.unk_id);
    }
    return;
  }
  if (!prev_unk && v_.unk_id >= 0) out.push_back(v_.unk_id);
  prev_unk = true;
}

void SpmBpeTokenizer::emit_resegmented(const std::vector<BpeMergeNode>& hist, int32_t node,
                                       std::string_view norm, std::vector<int32_t>& out) const {
  const BpeMergeNode& n = hist[node];
  if (n.left < 0 || v_.types[n.sym.id] != kTokenUnused) {
    bool prev_unk = false;
    if (n.sym.id >= 0)
      out.push_back(n.sym.id);
    else
      emit_unknown(norm.substr(n.sym.start, n.sym.len), prev_unk, out);
    return;
  }
  emit_resegmented(hist, n.left, norm, out);
  emit_resegmented(hist, n.right, norm, out);
}

std::vector<int32_t> SpmBpeTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos && v_.bos_id >= 0) out.push_back(v_.bos_id);
  if (text.empty()) return out;
  if (text.size() > std::numeric_limits<uint32_t>::max() / 4) {
    throw Error("tokenizer",
                "text too long to encode in one call (" + std::to_string(text.size()) + " bytes)");
  }
  const std::string norm = normalize(text);
  const std::string_view nv = norm;
  auto pair_fn = [&](const BpeSymbol& l, const BpeSymbol& r) -> std::optional<BpeCandidate> {
    const auto it = mergeable_.find(nv.substr(l.start, l.len + r.len));
    if (it == mergeable_.end()) return std::nullopt;
    return BpeCandidate{-static_cast<double>(v_.scores[it->second]), it->second};
  };
  std::vector<BpeMergeNode> hist;
  const std::vector<BpeSymbol> syms =
      bpe_merge(split_symbols(nv), pair_fn, has_unused_ ? &hist : nullptr);
  out.reserve(out.size() + syms.size());
  bool prev_unk = false;
  for (const BpeSymbol& s : syms) {
    if (s.id < 0) {
      emit_unknown(nv.substr(s.start, s.len), prev_unk, out);
      continue;
    }
    prev_unk = false;
    if (has_unused_ && v_.types[s.id] == kTokenUnused)
      emit_resegmented(hist, s.node, nv, out);
    else
      out.push_back(s.id);
  }
  return out;
}

}  // namespace

std::unique_ptr<Tokenizer> make_spm_bpe_tokenizer(SpmVocab v, std::string kind,
                                                  std::string_view origin, TokenizerBlob source) {
  const std::string_view where = origin.empty() ? std::string_view(kind) : origin;
  if (kind != "llama2c" && kind != "gguf-llama") {
    throw Error("tokenizer", std::string(origin.empty() ? "make_spm_bpe_tokenizer" : origin) +
                                 ": unknown kind '" + kind + "' (want llama2c or gguf-llama)");
  }
  validate_spm_vocab(v, where);
  return std::make_unique<SpmBpeTokenizer>(std::move(v), std::move(kind), std::move(source));
}

std::unique_ptr<Tokenizer> spm_bpe_tokenizer_from_json(std::string_view text,
                                                       std::string_view origin) {
  SpmVocabWithKind vk = spm_vocab_from_json(text, origin);
  return make_spm_bpe_tokenizer(std::move(vk.vocab), std::move(vk.tokenizer_kind), origin);
}

}  // namespace lowbit
