#include "tokenizer/hf_bpe_model.h"

#include <cstdio>

#include "base/error.h"
#include "tokenizer/bpe_merge.h"
#include "tokenizer/utf8.h"

namespace lowbit {

HfBpeModel::HfBpeModel(StringMap<int32_t> vocab,
                       const std::vector<std::pair<std::string, std::string>>& merges,
                       HfBpeOptions opt, std::string_view origin)
    : vocab_(std::move(vocab)), opt_(opt) {
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const int32_t ia = find_or(vocab_, a, -1), ib = find_or(vocab_, b, -1);
    const int32_t merged = find_or(vocab_, a + b, -1);
    if (ia < 0 || ib < 0 || merged < 0) {
      throw Error("tokenizer", std::string(origin) + ": merge " + std::to_string(rank) + " '" + a +
                                   " " + b + "' references a token that is not in model.vocab");
    }
    merges_.emplace(pair_key(ia, ib),
                    Merge{static_cast<int32_t>(rank), merged});  // first rank wins
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_ids_[b] = find_or(vocab_, std::string_view(name), -1);
  }
}

void HfBpeModel::emit_unknown(std::string_view ch, bool& prev_unk,
                              std::vector<int32_t>& out) const {
  if (opt_.byte_fallback) {
    bool all = true;
    for (char c : ch) all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
    if (all) {
      for (char c : ch) out.push_back(byte_ids_[static_cast<unsigned char>(c)]);
      prev_unk = false;
      return;
    }
  }
  if (opt_.unk_id >= 0 && !(opt_.fuse_unk && prev_unk)) out.push_back(opt_.unk_id);
  prev_unk = true;
}

void HfBpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (opt_.ignore_merges) {
    const auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<BpeSymbol> syms;
  for (size_t i = 0; i < word.size();) {
    const size_t n = utf8_char_len(word.substr(i));
    syms.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(n),
                    find_or(vocab_, word.substr(i, n), -1)});
    i += n;
  }
  auto pair_fn = [&](const BpeSymbol& l, const BpeSymbol& r) -> std::optional<BpeCandidate> {
    if (l.id < 0 || r.id < 0) return std::nullopt;
    const auto it = merges_.find(pair_key(l.id, r.id));
    if (it == merges_.end()) return std::nullopt;
    return BpeCandidate{static_cast<double>(it->second.rank), it->second.id};
  };
  bool prev_unk = false;
  for (const BpeSymbol& s : bpe_merge(std::move(syms), pair_fn)) {
    if (s.id >= 0) {
      out.push_back(s.id);
      prev_unk = false;
    } else {
      emit_unknown(word.substr(s.start, s.len), prev_unk, out);
    }
  }
}

}  // namespace lowbit
