// Runs a freshly parsed tokenizer through encode / decode / token_bytes / to_blob, so that a
// vocabulary that parsed but is inconsistent shows up as a crash rather than passing silently.
#pragma once

#include <algorithm>
#include <string_view>

#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"

namespace lowbit::fuzz {

inline void exercise_tokenizer(const Tokenizer& tok, std::string_view extra) {
  const int32_t n = tok.vocab_size();
  for (int32_t id = 0; id < std::min<int32_t>(n, 64); ++id) (void)tok.token_bytes(id);
  if (n > 0) (void)tok.token_bytes(n - 1);
  for (const std::string& text : sample_texts(extra)) {
    const std::vector<int32_t> ids = tok.encode(text, true);
    (void)tok.decode(ids);
    StreamDecoder stream(tok);
    for (int32_t id : ids) (void)stream.push(id);
    (void)stream.flush();
  }
  (void)tok.to_blob();
}

}  // namespace lowbit::fuzz
