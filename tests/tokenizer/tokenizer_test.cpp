#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <map>

#include "tokenizer/utf8.h"

namespace lowbit {
namespace {

TEST(Utf8CompletePrefix, EdgeCases) {
  EXPECT_EQ(utf8_complete_prefix(""), 0u);
  EXPECT_EQ(utf8_complete_prefix("abc"), 3u);
  EXPECT_EQ(utf8_complete_prefix("a\xC3"), 1u);                 // 2-byte lead alone
  EXPECT_EQ(utf8_complete_prefix("a\xC3\xA9"), 3u);             // é complete
  EXPECT_EQ(utf8_complete_prefix("a\xE6\x97"), 1u);             // 3-byte char missing 1
  EXPECT_EQ(utf8_complete_prefix("a\xE6\x97\xA5"), 4u);         // 日 complete
  EXPECT_EQ(utf8_complete_prefix("\xF0\x9F\xA4"), 0u);          // emoji missing 1 of 4
  EXPECT_EQ(utf8_complete_prefix("\xF0\x9F\xA4\x96"), 4u);      // 🤖 complete
  EXPECT_EQ(utf8_complete_prefix("x\xF0"), 1u);                 // 4-byte lead alone
  EXPECT_EQ(utf8_complete_prefix("\x80\x80"), 2u);              // stray continuations pass
  EXPECT_EQ(utf8_complete_prefix("\x80\x80\x80\x80\x80"), 5u);  // >3 continuations: pass
  EXPECT_EQ(utf8_complete_prefix("a\xFF"), 2u);                 // invalid lead: pass
  EXPECT_EQ(utf8_complete_prefix("\xC3\xA9\xC3"), 2u);
}

TEST(Utf8, CharLenAndValidity) {
  EXPECT_EQ(utf8_char_len(""), 0u);
  EXPECT_EQ(utf8_char_len("a"), 1u);
  EXPECT_EQ(utf8_char_len("\xC3\xA9x"), 2u);
  EXPECT_EQ(utf8_char_len("\xF0\x9F\xA4\x96"), 4u);
  EXPECT_EQ(utf8_char_len("\xF0\x9F\xA4"), 1u);      // truncated
  EXPECT_EQ(utf8_char_len("\xC0\x80"), 1u);          // overlong
  EXPECT_EQ(utf8_char_len("\xED\xA0\x80"), 1u);      // surrogate
  EXPECT_EQ(utf8_char_len("\xF4\x90\x80\x80"), 1u);  // > U+10FFFF
  EXPECT_TRUE(is_valid_utf8("héllo 日本 🤖"));
  EXPECT_FALSE(is_valid_utf8("a\xFF"));
  EXPECT_EQ(utf8_encode(0x20AC), "\xE2\x82\xAC");
  EXPECT_EQ(utf8_encode(0x1F916), "\xF0\x9F\xA4\x96");
}

// A fake tokenizer whose tokens are given byte strings, to drive StreamDecoder directly.
class FakeTokenizer : public Tokenizer {
 public:
  FakeTokenizer(std::vector<std::string> t, bool strip) : t_(std::move(t)), strip_(strip) {}
  std::vector<int32_t> encode(std::string_view, bool) const override { return {}; }
  std::string token_bytes(int32_t id) const override { return t_.at(id); }
  int32_t vocab_size() const override { return static_cast<int32_t>(t_.size()); }
  int32_t bos_id() const override { return 0; }
  int32_t eos_id() const override { return -1; }
  std::string kind() const override { return "fake"; }
  bool strips_leading_space() const override { return strip_; }
  TokenizerBlob to_blob() const override { return {"fake", ""}; }

 private:
  std::vector<std::string> t_;
  bool strip_;
};

TEST(StreamDecoder, HoldsPartialCharacters) {
  // 0: "" (BOS), 1: " hi", 2..5: the 4 bytes of 🤖, 6: "\xC3", 7: "\xA9!"
  const FakeTokenizer tok({"", " hi", "\xF0", "\x9F", "\xA4", "\x96", "\xC3", "\xA9!"}, true);
  StreamDecoder sd(tok);
  EXPECT_EQ(sd.push(0), "");
  EXPECT_EQ(sd.push(1), "hi");  // leading dummy-prefix space dropped once
  EXPECT_EQ(sd.push(2), "");
  EXPECT_EQ(sd.push(3), "");
  EXPECT_EQ(sd.push(4), "");
  EXPECT_EQ(sd.push(5), "\xF0\x9F\xA4\x96");
  EXPECT_EQ(sd.push(1), " hi");  // only the first space is stripped
  EXPECT_EQ(sd.push(6), "");
  EXPECT_EQ(sd.push(7), "\xC3\xA9!");
  EXPECT_EQ(sd.flush(), "");
  const std::vector<int32_t> ids = {0, 1, 2, 3, 4, 5, 1, 6, 7};
  EXPECT_EQ(tok.decode(ids), "hi\xF0\x9F\xA4\x96 hi\xC3\xA9!");
}

TEST(StreamDecoder, ContinuingTextKeepsFirstSpace) {
  const FakeTokenizer tok({"", " hi", " there"}, true);
  StreamDecoder sd(tok, /*continues_text=*/true);
  EXPECT_EQ(sd.push(1), " hi");
  EXPECT_EQ(sd.push(2), " there");
}

TEST(StreamDecoder, FlushReturnsIncompleteBytes) {
  const FakeTokenizer tok({"a", "\xE6", "\x97"}, false);
  StreamDecoder sd(tok);
  EXPECT_EQ(sd.push(0), "a");
  EXPECT_EQ(sd.push(1), "");
  EXPECT_EQ(sd.push(2), "");
  EXPECT_EQ(sd.flush(), "\xE6\x97");
  EXPECT_EQ(sd.flush(), "");
}

}  // namespace
}  // namespace lowbit
