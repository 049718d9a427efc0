// Helpers shared by the tokenizer tests: golden files, odd strings, round-trip checks.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "testutil.h"
#include "tokenizer/tokenizer.h"

namespace lowbit::test {

inline nlohmann::json load_json(const std::string& rel) {
  return nlohmann::json::parse(read_file(shared_path(rel)));
}

// Strings that stress UTF-8 handling and whitespace (no golden ids: used for round trips and
// for comparing two implementations). None contains U+2581 "▁", which SentencePiece-style
// tokenizers read as a space (so it cannot round-trip there).
inline std::vector<std::string> odd_strings() {
  return {
      "",
      " ",
      "   ",
      "\n\n",
      "\t",
      "a\tb\t\tc",
      "  two leading, three trailing   ",
      "emoji 🤖🚀 and 👩‍👩‍👧‍👦 family",
      "CJK 日本語のテキスト 中文 한국어",
      "combining: e\xCC\x81 a\xCC\x8A\xCC\x81 n\xCC\x83",
      "4-byte: \xF0\x90\x8D\x88 \xF0\x9D\x84\x9E \xF0\x9F\x98\x80",
      "mixed\r\nline\rendings\n",
      "zero\xE2\x80\x8Bwidth\xE2\x80\x8Dthings\xEF\xBB\xBF",
      "<s> </s> <unk> <0x0A> <|im_start|>",
      "Ünïcödé: naïve café, Ελληνικά, русский, עברית, العربية",
      "numbers 0123456789 3.14159 1e-9 ½ ² ٣",
  };
}

// Decoding ids one at a time through StreamDecoder must equal decode(ids); the stream never
// emits a partial UTF-8 character before flush().
inline void expect_stream_matches_decode(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  StreamDecoder sd(tok);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string piece = sd.push(id);
    EXPECT_EQ(utf8_complete_prefix(piece), piece.size()) << "partial char emitted";
    streamed += piece;
  }
  streamed += sd.flush();
  EXPECT_EQ(streamed, tok.decode(ids));
}

inline void expect_round_trip(const Tokenizer& tok, const std::string& s) {
  const std::vector<int32_t> ids = tok.encode(s, false);
  EXPECT_EQ(tok.decode(ids), s) << tok.kind() << " round trip of '" << s << "'";
  expect_stream_matches_decode(tok, ids);
  std::vector<int32_t> with_bos = tok.encode(s, true);
  if (tok.bos_id() >= 0) {
    ASSERT_FALSE(with_bos.empty());
    EXPECT_EQ(with_bos.front(), tok.bos_id());
    with_bos.erase(with_bos.begin());
  }
  EXPECT_EQ(with_bos, ids);
}

// Expects fn() to throw lowbit::Error whose message contains every needle.
template <class Fn>
void expect_error_containing(Fn&& fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "expected lowbit::Error";
  } catch (const Error& e) {
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

}  // namespace lowbit::test
