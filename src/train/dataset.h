// Fine-tuning data: token sequences with per-position targets, split into train and held-out
// parts, and served as shuffled batches.
//
// Sources (chosen by file name):
//  * plain text (any name not ending in .jsonl): the whole file tokenized once (BOS first); the
//    last `holdout` fraction of the tokens is held out; each part is cut into non-overlapping
//    windows of ctx + 1 tokens (inputs t[i..i+ctx), targets t[i+1..i+ctx]); a last shorter window
//    of at least 2 tokens is kept, its missing targets masked.
//  * JSONL, one example per line, one of
//      {"text": "..."}                                   loss on every token
//      {"prompt": "...", "completion" | "response": "..."}   loss only on the completion
//      {"instruction": "...", "input": "...", "output": "..."} (Alpaca; prompt = instruction +
//        "\n\n" + input when input is non-empty, completion = output)
//    A prompted example is BOS + tokens(prompt + completion) + EOS, the targets of the prompt's
//    tokens masked (the prompt's length taken from tokenizing the prompt alone, as HF recipes
//    do); sequences are truncated to ctx + 1 tokens. The last `holdout` fraction of the lines is
//    held out. Blank lines are skipped; anything else malformed is an error naming the line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "train/lora_model.h"

namespace lowbit {

struct Sequence {
  std::vector<int32_t> tokens, targets;  // equal lengths <= ctx; targets −1 where no loss
  int64_t n_targets() const;
};

struct DatasetOptions {
  int64_t ctx = 256;       // positions per sequence
  double holdout = 0.1;    // fraction held out for evaluation, in [0, 0.9]
};

struct Dataset {
  std::string kind;  // "text" or "jsonl"
  std::vector<Sequence> train, heldout;
  int64_t train_targets() const;
  int64_t heldout_targets() const;
};

// Throws lowbit::Error("finetune", ...) for an unreadable or malformed file, bad options, or
// data too small to give at least one training sequence (and one held-out one when holdout > 0).
Dataset load_dataset(const std::string& path, const Tokenizer& tok, const DatasetOptions& o);

// Sequences [first, first + n) of `order` (indices into `seqs`) as one batch: len = the longest,
// shorter ones padded with token 0 and target −1.
TrainBatch make_batch(const std::vector<Sequence>& seqs, const std::vector<int64_t>& order, int64_t first,
                      int64_t n);

// Epoch `epoch`'s order of n sequences: a Fisher–Yates shuffle driven by mt19937_64 seeded
// with seed + epoch, drawing j = rng() % (i + 1) (portable across standard libraries).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace lowbit
