#include <gtest/gtest.h>

#include "base/error.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer_test_util.h"

namespace lowbit {
namespace {

using test::load_json;
using test::shared_path;

TEST(SentencePiece, Llama2GoldenTokens) {
  const auto golden = load_json("models/llama2-tokenizer/golden-tokens.json");
  const auto tok =
      load_sentencepiece_tokenizer(shared_path("models/llama2-tokenizer/tokenizer.model"));
  EXPECT_EQ(tok->kind(), "sentencepiece");
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_TRUE(tok->strips_leading_space());
  ASSERT_GE(golden["cases"].size(), 10u);
  for (const auto& c : golden["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(tok->encode(text, false), c["ids"].get<std::vector<int32_t>>()) << text;
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->decode(ids), c["decoded"].get<std::string>()) << text;
    test::expect_stream_matches_decode(*tok, ids);
  }
}

TEST(SentencePiece, RefMGoldenPromptsWithBos) {
  const auto golden = load_json("models/ref-m/golden.json");
  const auto tok = load_sentencepiece_tokenizer(shared_path("models/ref-m/tokenizer.model"));
  EXPECT_EQ(tok->vocab_size(), 4096);
  ASSERT_EQ(golden["prompts"].size(), 3u);
  for (const auto& p : golden["prompts"]) {
    const std::string text = p["text"];
    const auto ids = p["token_ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode(text, true), ids) << text;
    EXPECT_EQ(tok->decode(ids), text);
  }
}

TEST(SentencePiece, TokenBytes) {
  const auto tok =
      load_sentencepiece_tokenizer(shared_path("models/llama2-tokenizer/tokenizer.model"));
  EXPECT_EQ(tok->token_bytes(0), " \xE2\x81\x87 ");  // <unk> prints as sentencepiece's " ⁇ "
  EXPECT_EQ(tok->token_bytes(1), "");                // <s>
  EXPECT_EQ(tok->token_bytes(2), "");                // </s>
  EXPECT_EQ(tok->token_bytes(13), "\n");             // <0x0A>
  EXPECT_EQ(tok->token_bytes(3 + 0xF0), "\xF0");     // <0xF0>
  EXPECT_EQ(tok->token_bytes(450), " The");          // ▁The
  EXPECT_EQ(tok->token_bytes(29871), " ");           // ▁
  EXPECT_EQ(tok->token_bytes(-1), "");
  EXPECT_EQ(tok->token_bytes(32000), "");
}

TEST(SentencePiece, OddUtf8RoundTrips) {
  const auto tok = load_sentencepiece_tokenizer(shared_path("models/ref-m/tokenizer.model"));
  for (const auto& s : test::odd_strings()) test::expect_round_trip(*tok, s);
}

TEST(SentencePiece, MalformedFilesThrow) {
  const std::string dir = test::temp_dir();
  const std::string good = test::read_file(shared_path("models/ref-m/tokenizer.model"));
  struct Case {
    std::string name, bytes;
  };
  const std::vector<Case> cases = {
      {"empty.model", ""},
      {"text.model", "this is not a protobuf at all\n"},
      {"half.model", good.substr(0, good.size() / 2)},
      {"cut1.model", good.substr(0, good.size() - 1)},
      {"head.model", good.substr(0, 100)},
      {"garbage.model", std::string("\x0a\xff\xff\xff\xff\x0f", 6) + "xyz"},
      {"zeros.model", std::string(64, '\0')},
  };
  for (const auto& c : cases) {
    const std::string path = dir + "/" + c.name;
    test::write_file(path, c.bytes);
    test::expect_error_containing([&] { load_sentencepiece_tokenizer(path); }, {path});
  }
  test::expect_error_containing([&] { load_sentencepiece_tokenizer(dir + "/missing.model"); },
                                {"missing.model"});
}

// Found by fuzz/sentencepiece: a unigram model with a NUL byte inside a piece made
// libsentencepiece's trie builder throw a foreign exception (std::terminate). The piece check
// refuses it first.
TEST(SentencePiece, PieceWithNulByteIsRefused) {
  const std::string bytes(
      "\x0a\x0e\x0a\x05\x3c\x75\x6e\x6b\x3e\x15\x00\x00\x00\x00\x18\x02\x0a\x0c\x0a\x03\x3c\x73"
      "\x3e\x15\x00\x00\x00\x00\x18\x00\x0a\x0d\x0a\x04\x00\x96\x7e\x61\x15\x00\x00\x80\xc0\x18"
      "\x01\x0a\x0e\x0a\x05\x31\x96\x81\x61\x62\x15\x00\x00\xc0\xc0\x18\x01\x12\x0d\x18\x01\x98"
      "\x06\x01\xe2\x02\x05\x20\xe2\x81\x87\x20\x1a\x0e\x0a\x08\x69\x64\x65\x6e\x74\x69\x74\x79"
      "\x18\x01\x20\x00",
      92);
  test::expect_error_containing([&] { sentencepiece_tokenizer_from_bytes(bytes, "nul.model"); },
                                {"nul.model", "NUL byte"});
  test::expect_error_containing([&] { sentencepiece_vocab_from_bytes(bytes, "nul.model"); },
                                {"nul.model", "NUL byte"});
}

}  // namespace
}  // namespace lowbit
