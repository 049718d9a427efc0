// The "model" part of an HF tokenizer.json with model.type "BPE": vocab + ranked merges, run on
// one pre-tokenized word at a time (already mapped to the byte-level alphabet when the
// tokenizer is byte-level).
//
// encode_word: if ignore_merges and the whole word is a token, that token; otherwise split into
// UTF-8 characters and apply merges lowest rank first, leftmost on ties (HF's Word::merge_all).
// A character that is no token becomes, in order of preference: its "<0xNN>" byte tokens
// (byte_fallback), the unk token (one per run if fuse_unk), or nothing (HF drops it too).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/string_map.h"

namespace lowbit {

struct HfBpeOptions {
  int32_t unk_id = -1;
  bool byte_fallback = false;
  bool fuse_unk = false;
  bool ignore_merges = false;
};

class HfBpeModel {
 public:
  // Throws lowbit::Error(origin + ": ...") if a merge names a token that is not in the vocab or
  // whose concatenation is not in the vocab.
  HfBpeModel(StringMap<int32_t> vocab,
             const std::vector<std::pair<std::string, std::string>>& merges, HfBpeOptions opt,
             std::string_view origin);

  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  const StringMap<int32_t>& vocab() const { return vocab_; }

 private:
  struct Merge {
    int32_t rank, id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void emit_unknown(std::string_view ch, bool& prev_unk, std::vector<int32_t>& out) const;

  StringMap<int32_t> vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  HfBpeOptions opt_;
  int32_t byte_ids_[256];
};

}  // namespace lowbit
