#include "tokenizer/tiktoken_tokenizer.h"

#include <charconv>
#include <limits>

#include "base/error.h"
#include "base/mapped_file.h"
#include "tokenizer/base64.h"
#include "tokenizer/bpe_merge.h"
#include "tokenizer/regex.h"
#include "tokenizer/string_map.h"

namespace lowbit {

namespace {

constexpr size_t kLlama3Ranks = 128000;
constexpr int32_t kLlama3Specials = 256;

struct Ranks {
  StringMap<int32_t> rank_of;      // token bytes -> rank (= id)
  std::vector<std::string> bytes;  // [n] id -> token bytes
};

int32_t parse_rank(std::string_view s) {
  int64_t v = -1;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0 ||
      v > std::numeric_limits<int32_t>::max())
    return -1;
  return static_cast<int32_t>(v);
}

void parse_line(std::string_view line, size_t line_no, const std::string& origin, Ranks& r) {
  auto fail = [&](const std::string& what) {
    throw Error("tokenizer", origin + ":" + std::to_string(line_no) + ": " + what);
  };
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos) fail("expected \"base64 rank\"");
  const std::optional<std::string> tok = base64_decode(line.substr(0, sp));
  if (!tok || tok->empty()) fail("bad base64 token");
  const int32_t rank = parse_rank(line.substr(sp + 1));
  if (rank < 0) fail("bad rank");
  if (static_cast<size_t>(rank) != r.bytes.size())
    fail("rank " + std::to_string(rank) + " out of order (want " + std::to_string(r.bytes.size()) +
         ")");
  if (!r.rank_of.emplace(*tok, rank).second) fail("duplicate token");
  r.bytes.push_back(*tok);
}

Ranks parse_ranks(std::string_view text, const std::string& origin) {
  Ranks r;
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++line_no;
    if (!line.empty()) parse_line(line, line_no, origin, r);
    pos = eol + 1;
  }
  if (r.bytes.empty()) throw Error("tokenizer", origin + ": no tokens");
  for (int b = 0; b < 256; ++b) {
    if (!r.rank_of.count(std::string(1, static_cast<char>(b)))) {
      throw Error("tokenizer", origin + ": byte " + std::to_string(b) +
                                   " has no token; not a byte-level BPE file");
    }
  }
  return r;
}

class TiktokenTokenizer final : public Tokenizer {
 public:
  TiktokenTokenizer(Ranks r, std::string text, const std::string& origin)
      : r_(std::move(r)),
        text_(std::move(text)),
        re_(kLlama3Pattern, origin),
        n_special_(r_.bytes.size() == kLlama3Ranks ? kLlama3Specials : 0) {}

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override;
  std::string token_bytes(int32_t id) const override {
    return id >= 0 && static_cast<size_t>(id) < r_.bytes.size() ? r_.bytes[id] : std::string();
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(r_.bytes.size()) + n_special_; }
  int32_t bos_id() const override { return n_special_ ? static_cast<int32_t>(kLlama3Ranks) : -1; }
  int32_t eos_id() const override {
    return n_special_ ? static_cast<int32_t>(kLlama3Ranks) + 1 : -1;
  }
  std::string kind() const override { return "tiktoken"; }
  TokenizerBlob to_blob() const override { return {"tiktoken", text_}; }

 private:
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

  Ranks r_;
  std::string text_;  // the rank file, for to_blob()
  Regex re_;
  int32_t n_special_;
};

void TiktokenTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (const auto it = r_.rank_of.find(piece); it != r_.rank_of.end()) {
    out.push_back(it->second);
    return;
  }
  std::vector<BpeSymbol> syms(piece.size());
  for (size_t i = 0; i < piece.size(); ++i) {
    syms[i] = {static_cast<uint32_t>(i), 1, r_.rank_of.find(piece.substr(i, 1))->second};
  }
  auto pair_fn = [&](const BpeSymbol& l, const BpeSymbol& r) -> std::optional<BpeCandidate> {
    const auto it = r_.rank_of.find(piece.substr(l.start, l.len + r.len));
    if (it == r_.rank_of.end()) return std::nullopt;
    return BpeCandidate{static_cast<double>(it->second), it->second};
  };
  for (const BpeSymbol& s : bpe_merge(std::move(syms), pair_fn)) out.push_back(s.id);
}

std::vector<int32_t> TiktokenTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos && bos_id() >= 0) out.push_back(bos_id());
  size_t pos = 0;
  for (const auto& [b, e] : re_.find_all(text)) {
    if (b > pos)
      encode_piece(text.substr(pos, b - pos), out);  // only ill-formed UTF-8 goes unmatched
    encode_piece(text.substr(b, e - b), out);
    pos = e;
  }
  if (pos < text.size()) encode_piece(text.substr(pos), out);
  return out;
}

}  // namespace

std::vector<std::string> parse_tiktoken_ranks(std::string_view text, std::string_view origin) {
  return parse_ranks(text, std::string(origin)).bytes;
}

const std::vector<std::string>& llama3_special_tokens() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v = {"<|begin_of_text|>",
                                  "<|end_of_text|>",
                                  "<|reserved_special_token_0|>",
                                  "<|reserved_special_token_1|>",
                                  "<|reserved_special_token_2|>",
                                  "<|reserved_special_token_3|>",
                                  "<|start_header_id|>",
                                  "<|end_header_id|>",
                                  "<|reserved_special_token_4|>",
                                  "<|eot_id|>"};
    for (int i = 5; v.size() < static_cast<size_t>(kLlama3Specials); ++i)
      v.push_back("<|reserved_special_token_" + std::to_string(i) + "|>");
    return v;
  }();
  return names;
}

std::unique_ptr<Tokenizer> load_tiktoken_tokenizer(const std::string& path) {
  return tiktoken_tokenizer_from_bytes(read_text_file(path), path);
}

std::unique_ptr<Tokenizer> tiktoken_tokenizer_from_bytes(std::string text,
                                                         std::string_view origin) {
  const std::string where(origin);
  Ranks r = parse_ranks(text, where);
  return std::make_unique<TiktokenTokenizer>(std::move(r), std::move(text), where);
}

}  // namespace lowbit
