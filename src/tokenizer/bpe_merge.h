// The greedy pair-merge loop shared by every BPE flavour here (SentencePiece-style score BPE,
// HF merges-rank BPE, tiktoken rank BPE).
//
// Input: the initial symbols of one piece of text, in order and contiguous (symbol i+1 starts
// where symbol i ends). pair_fn(left, right) says whether two adjacent symbols may merge and
// returns {rank, id of the merged token}; std::nullopt means "never". The loop repeatedly merges
// the adjacent pair with the LOWEST rank, the leftmost one on ties, re-evaluating the merged
// symbol's new neighbours, until no pair can merge. This is exactly the classic "rescan for the
// best pair" algorithm (llama2.c run.c, HF tokenizers, tiktoken, sentencepiece's BPE), done with
// a priority queue plus a doubly linked list in O(n log n): stale queue entries are detected by
// a changed length (symbols only ever grow or die), as sentencepiece does.
// Frozen symbols never merge (pair_fn is not even asked).
//
// If history is non-null it receives every node: the n initial symbols first, then one node
// per merge naming its two children; each output symbol's .node indexes it. That lets a caller
// undo merges (sentencepiece re-splits "unused" pieces).
#pragma once

#include <cstdint>
#include <optional>
#include <queue>
#include <vector>

namespace lowbit {

struct BpeSymbol {
  uint32_t start = 0;   // byte offset in the caller's text
  uint32_t len = 0;     // byte length (> 0)
  int32_t id = -1;      // token id; -1 if this text is no token
  bool frozen = false;  // never merges with a neighbour
  int32_t node = -1;    // index into the merge history (set by bpe_merge)
};

struct BpeCandidate {
  double rank = 0;  // lower merges first
  int32_t id = -1;  // id of the merged token
};

struct BpeMergeNode {
  BpeSymbol sym;
  int32_t left = -1, right = -1;  // child nodes; -1 for initial symbols
};

template <class PairFn>
std::vector<BpeSymbol> bpe_merge(std::vector<BpeSymbol> syms, PairFn&& pair_fn,
                                 std::vector<BpeMergeNode>* history = nullptr) {
  struct Item {
    double rank;
    int32_t left, right, id;
    uint32_t len;
  };
  struct Worse {
    bool operator()(const Item& a, const Item& b) const {
      return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
  };
  const auto n = static_cast<int32_t>(syms.size());
  std::vector<int32_t> prev(n), next(n);
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
    syms[i].node = i;
    if (history) history->push_back({syms[i], -1, -1});
  }
  std::priority_queue<Item, std::vector<Item>, Worse> agenda;
  auto consider = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0 || syms[l].frozen || syms[r].frozen) return;
    const std::optional<BpeCandidate> c = pair_fn(syms[l], syms[r]);
    if (c) agenda.push({c->rank, l, r, c->id, syms[l].len + syms[r].len});
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i, i + 1);
  while (!agenda.empty()) {
    const Item top = agenda.top();
    agenda.pop();
    BpeSymbol& l = syms[top.left];
    BpeSymbol& r = syms[top.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != top.len) continue;  // stale
    l.len += r.len;
    l.id = top.id;
    r.len = 0;
    next[top.left] = next[top.right];
    if (next[top.left] >= 0) prev[next[top.left]] = top.left;
    if (history) {
      const int32_t children[2] = {l.node, r.node};
      l.node = static_cast<int32_t>(history->size());
      history->push_back({l, children[0], children[1]});
    }
    consider(prev[top.left], top.left);
    consider(top.left, next[top.left]);
  }
  std::vector<BpeSymbol> out;
  for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = next[i]) out.push_back(syms[i]);
  return out;
}

}  // namespace lowbit
