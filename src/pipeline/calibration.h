// Calibration data for the calibrated quantizers (GPTQ, AWQ, activation-weighted RTN): text
// files cut into N windows of L tokens.
//
// Sampling: every file of the source (a file, or a directory's regular non-hidden files in name
// order) is tokenized whole, without BOS. Each window picks a token position uniformly over all
// files' valid window starts (so larger files give proportionally more windows) from a
// mt19937_64 seeded with `seed`; windows may overlap. Files shorter than L tokens are skipped.
// The same source, tokenizer, L, N and seed always give the same windows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace lowbit {

struct CalibrationOptions {
  std::string source;          // file or directory
  int64_t windows = 128;       // N
  int64_t window_len = 512;    // L (callers clamp it to the model's training context)
  uint64_t seed = 0;
};

struct CalibrationSet {
  int64_t window_len = 0;
  std::vector<std::vector<int32_t>> windows;  // N windows of window_len ids
  int64_t source_tokens = 0;                  // tokens in all files read
  std::vector<std::string> files;
};

// Throws lowbit::Error("calibration", ...) if the source is missing or unreadable, N or L < 1,
// or no file has L tokens.
CalibrationSet load_calibration(const Tokenizer& tokenizer, const CalibrationOptions& opt);

// The default source: $LOWBIT_SHARED/data/calibration, or ../shared/data/calibration (relative
// to the working directory, i.e. the shared assets beside the repository) when unset.
std::string default_calibration_source();

}  // namespace lowbit
