#include <gtest/gtest.h>

#include <cstring>

#include "base/error.h"
#include "tokenizer/llama2c_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer_test_util.h"

namespace lowbit {
namespace {

using test::load_json;
using test::shared_path;

const std::string kTok512 = "models/stories260K/tok512.bin";

TEST(Llama2c, Stories260KGoldenPrompts) {
  const auto golden = load_json("models/stories260K/golden.json");
  const auto tok = load_llama2c_tokenizer(shared_path(kTok512), 512);
  EXPECT_EQ(tok->kind(), "llama2c");
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  ASSERT_EQ(golden["prompts"].size(), 3u);
  for (const auto& p : golden["prompts"]) {
    const std::string text = p["text"];
    const auto ids = p["token_ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode(text, true), ids) << text;
    EXPECT_EQ(tok->decode(ids), text);
    test::expect_stream_matches_decode(*tok, ids);
  }
}

TEST(Llama2c, Stories260KGreedyTextDecodes) {
  // The BOS greedy continuation decodes to the text llama2.c prints.
  const auto golden = load_json("models/stories260K/golden.json");
  const auto tok = load_llama2c_tokenizer(shared_path(kTok512), 512);
  const auto ids = golden["bos_greedy"]["greedy_ids"].get<std::vector<int32_t>>();
  const std::string text = tok->decode(ids);
  EXPECT_EQ(text.rfind("Once upon a time, there was a little girl named Lily. She loved to play "
                       "outside in the park.",
                       0),
            0u)
      << text;
}

TEST(Llama2c, ByteFallbackFor512Vocab) {
  const auto tok = load_llama2c_tokenizer(shared_path(kTok512), 512);
  // 'ж' (D0 B6) and '日' (E6 97 A5) are not pieces of the 512-token vocab ('é' is): they
  // become byte tokens, id = byte + 3. The dummy-prefix "▁" is piece 410 and cannot merge
  // with a byte token.
  const auto ids = tok->encode("ж日", false);
  EXPECT_EQ(ids, (std::vector<int32_t>{410, 0xD0 + 3, 0xB6 + 3, 0xE6 + 3, 0x97 + 3, 0xA5 + 3}));
  EXPECT_EQ(tok->token_bytes(0xD0 + 3), "\xD0");
  EXPECT_EQ(tok->decode(ids), "ж日");
  for (const auto& s : test::odd_strings()) test::expect_round_trip(*tok, s);
}

TEST(Llama2c, TokenBytes) {
  const auto tok = load_llama2c_tokenizer(shared_path(kTok512), 512);
  EXPECT_EQ(tok->token_bytes(1), "");           // "\n<s>\n" is BOS: control
  EXPECT_EQ(tok->token_bytes(2), "");           // EOS
  EXPECT_EQ(tok->token_bytes(3 + '\n'), "\n");  // <0x0A>
  EXPECT_EQ(tok->token_bytes(259), " t");       // stored as " t" in the file
  EXPECT_EQ(tok->token_bytes(512), "");
}

// llama2.c's 32000-token export of the Llama-2 vocab against sentencepiece's own encodings.
TEST(Llama2c, Llama2BinMatchesSentencePieceGolden) {
  const auto golden = load_json("models/llama2-tokenizer/golden-tokens.json");
  const auto tok =
      load_llama2c_tokenizer(shared_path("models/llama2-tokenizer/tokenizer.bin"), 32000);
  for (const auto& c : golden["cases"]) {
    const std::string text = c["text"];
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode(text, false), ids) << text;
    EXPECT_EQ(tok->decode(ids), c["decoded"].get<std::string>());
  }
}

// The .bin and the .model describe the same vocab: identical ids on odd strings and on
// multilingual text too.
TEST(Llama2c, Llama2BinAgreesWithSentencePiece) {
  const auto bin =
      load_llama2c_tokenizer(shared_path("models/llama2-tokenizer/tokenizer.bin"), 32000);
  const auto sp =
      load_sentencepiece_tokenizer(shared_path("models/llama2-tokenizer/tokenizer.model"));
  for (const auto& s : test::odd_strings()) {
    EXPECT_EQ(bin->encode(s, true), sp->encode(s, true)) << s;
    test::expect_round_trip(*bin, s);
  }
  const std::string multi =
      test::read_file(shared_path("data/calibration/multilingual.utf8")).substr(0, 60000);
  const auto ids = bin->encode(multi, false);
  EXPECT_TRUE(ids == sp->encode(multi, false));
  EXPECT_EQ(bin->decode(ids), multi);
}

std::string record(float score, int32_t len, const std::string& bytes) {
  std::string r(8, '\0');
  std::memcpy(r.data(), &score, 4);
  std::memcpy(r.data() + 4, &len, 4);
  return r + bytes;
}

std::string header(int32_t max_len) {
  std::string h(4, '\0');
  std::memcpy(h.data(), &max_len, 4);
  return h;
}

TEST(Llama2c, MalformedFilesThrow) {
  const std::string dir = test::temp_dir();
  const std::string good = test::read_file(shared_path(kTok512));
  const std::string ok3 = record(0, 5, "<unk>") + record(0, 3, "<s>") + record(0, 4, "</s>");
  struct Case {
    std::string name, bytes, hint;
  };
  const std::vector<Case> cases = {
      {"empty.bin", "", "truncated"},
      {"short_header.bin", "ab", "truncated"},
      {"truncated.bin", good.substr(0, good.size() - 3), "truncated"},
      {"truncated_mid.bin", good.substr(0, 1000), "truncated"},
      {"negative_len.bin", header(8) + ok3 + record(-1.0f, -5, "abc"), "negative length"},
      {"huge_len.bin", header(8) + ok3 + record(-1.0f, 0x7fffffff, "abc"), "runs past the end"},
      {"negative_max.bin", header(-3) + ok3, "negative max_token_length"},
      {"trailing.bin", good + "xyz", "does not match"},
  };
  for (const auto& c : cases) {
    const std::string path = dir + "/" + c.name;
    test::write_file(path, c.bytes);
    const int32_t vocab = c.name == "negative_len.bin" || c.name == "huge_len.bin"
                              ? 4
                              : (c.name == "negative_max.bin" ? 3 : 512);
    test::expect_error_containing([&] { load_llama2c_tokenizer(path, vocab); }, {path, c.hint});
  }
  // The right file with the wrong vocab size: leftover bytes.
  test::expect_error_containing([&] { load_llama2c_tokenizer(shared_path(kTok512), 500); },
                                {"does not match"});
  test::expect_error_containing([&] { load_llama2c_tokenizer(shared_path(kTok512), 0); },
                                {"vocab size"});
  test::expect_error_containing([&] { load_llama2c_tokenizer(shared_path(kTok512), 600); },
                                {"truncated"});
}

}  // namespace
}  // namespace lowbit
