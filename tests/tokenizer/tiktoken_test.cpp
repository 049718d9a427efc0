#include <gtest/gtest.h>

#include "base/error.h"
#include "tokenizer/tiktoken_tokenizer.h"
#include "tokenizer_test_util.h"

namespace lowbit {
namespace {

using test::shared_path;

const std::string kLlama3 = "models/llama3-tokenizer/tokenizer.model";

TEST(Tiktoken, Llama3VocabAndSpecials) {
  const auto tok = load_tiktoken_tokenizer(shared_path(kLlama3));
  EXPECT_EQ(tok->kind(), "tiktoken");
  EXPECT_EQ(tok->vocab_size(), 128256);  // 128000 ranks + 256 specials
  EXPECT_EQ(tok->bos_id(), 128000);      // <|begin_of_text|>
  EXPECT_EQ(tok->eos_id(), 128001);      // <|end_of_text|>
  EXPECT_EQ(tok->token_bytes(128000), "");
  EXPECT_EQ(tok->token_bytes(128255), "");
  EXPECT_EQ(tok->token_bytes(128256), "");
  // Line 1 of the file is "IQ== 0": rank 0 is "!".
  EXPECT_EQ(tok->token_bytes(0), "!");
}

TEST(Tiktoken, Llama3KnownIds) {
  // The file's lines "SGVsbG8= 9906" and "IHdvcmxk 1917" ("Hello", " world"): the regex splits
  // "Hello world" into "Hello" and " world", each a whole token, emitted as is.
  const auto tok = load_tiktoken_tokenizer(shared_path(kLlama3));
  EXPECT_EQ(tok->token_bytes(9906), "Hello");
  EXPECT_EQ(tok->token_bytes(1917), " world");
  EXPECT_EQ(tok->encode("Hello world", true), (std::vector<int32_t>{128000, 9906, 1917}));
  // Digits are split in groups of at most 3 by the Llama-3 pattern: "123" is line "MTIz 4513".
  EXPECT_EQ(tok->token_bytes(4513), "123");
  const auto ids = tok->encode("123123", false);
  EXPECT_EQ(ids, (std::vector<int32_t>{4513, 4513}));
  // Specials are plain text here.
  const auto special = tok->encode("<|begin_of_text|>", false);
  EXPECT_GT(special.size(), 1u);
  for (int32_t id : special) EXPECT_LT(id, 128000);
}

TEST(Tiktoken, RoundTrips) {
  const auto tok = load_tiktoken_tokenizer(shared_path(kLlama3));
  for (const auto& s : test::odd_strings()) test::expect_round_trip(*tok, s);
  const std::string invalid = "\xff\xfe invalid \xC3 utf8 \xE6\x97";
  EXPECT_EQ(tok->decode(tok->encode(invalid, false)),
            invalid);  // raw-byte alphabet: anything round-trips
  const std::string wiki =
      test::read_file(shared_path("data/wikitext-2-raw/wiki.test.raw")).substr(0, 200000);
  EXPECT_EQ(tok->decode(tok->encode(wiki, false)), wiki);
}

TEST(Tiktoken, MalformedFilesThrow) {
  const std::string dir = test::temp_dir();
  std::string bytes256;  // a valid minimal file: all 256 single bytes, ranks 0..255
  {
    static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int b = 0; b < 256; ++b) {
      bytes256 +=
          std::string{k[b >> 2], k[(b & 3) << 4], '=', '='} + " " + std::to_string(b) + "\n";
    }
  }
  ASSERT_NO_THROW(load_tiktoken_tokenizer([&] {
    test::write_file(dir + "/ok.tiktoken", bytes256);
    return dir + "/ok.tiktoken";
  }()));
  struct Case {
    std::string name, text, hint;
  };
  const std::vector<Case> cases = {
      {"empty.tiktoken", "", "no tokens"},
      {"no_space.tiktoken", "QQ==\n", ":1: expected"},
      {"bad_b64.tiktoken", "Q!== 0\n", ":1: bad base64"},
      {"bad_rank.tiktoken", "QQ== x\n", ":1: bad rank"},
      {"gap.tiktoken", "QQ== 0\nQg== 2\n", ":2: rank 2 out of order"},
      {"dup.tiktoken", "QQ== 0\nQQ== 1\n", ":2: duplicate"},
      {"missing_bytes.tiktoken", "QQ== 0\nQg== 1\n", "has no token"},
      {"extra_line.tiktoken", bytes256 + "QUI= 256 7\n", ":257: bad rank"},
  };
  for (const auto& c : cases) {
    const std::string path = dir + "/" + c.name;
    test::write_file(path, c.text);
    test::expect_error_containing([&] { load_tiktoken_tokenizer(path); }, {path, c.hint});
  }
}

}  // namespace
}  // namespace lowbit
