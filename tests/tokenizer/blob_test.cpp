// Tokenizer::to_blob / tokenizer_from_blob: every kind rebuilds to an identical tokenizer from
// its blob alone, and malformed blobs throw lowbit::Error naming the container.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "base/error.h"
#include "tokenizer/load.h"
#include "tokenizer/spm_vocab_json.h"
#include "tokenizer_test_util.h"

namespace lowbit {
namespace {

using test::shared_path;

const std::string kOrigin = "model.lowbit";

std::vector<std::string> sample_texts() {
  std::istringstream in(test::read_file(shared_path("data/wikitext-2-raw/wiki.test.raw")));
  std::vector<std::string> out;
  std::string line;
  while (out.size() < 300 && std::getline(in, line)) out.push_back(line);
  EXPECT_EQ(out.size(), 300u);
  for (std::string& s : test::odd_strings()) out.push_back(std::move(s));
  out.push_back("\xff\xfe invalid \xC3 utf8");
  return out;
}

// a and b must be indistinguishable through the Tokenizer interface.
void expect_same_tokenizer(const Tokenizer& a, const Tokenizer& b) {
  EXPECT_EQ(a.kind(), b.kind());
  EXPECT_EQ(a.vocab_size(), b.vocab_size());
  EXPECT_EQ(a.bos_id(), b.bos_id());
  EXPECT_EQ(a.eos_id(), b.eos_id());
  EXPECT_EQ(a.strips_leading_space(), b.strips_leading_space());
  for (int32_t id = -1; id <= a.vocab_size(); ++id)
    ASSERT_EQ(a.token_bytes(id), b.token_bytes(id)) << id;
  int mismatches = 0;
  for (const std::string& s : sample_texts()) {
    const std::vector<int32_t> ids = a.encode(s, true);
    if (b.encode(s, true) != ids && ++mismatches <= 3) ADD_FAILURE() << "ids differ for: " << s;
    EXPECT_EQ(a.decode(ids), b.decode(ids));
  }
  EXPECT_EQ(mismatches, 0);
}

// Blob of tok has the given kind; the tokenizer rebuilt from it is identical and gives back the
// same blob.
TokenizerBlob check_round_trip(const Tokenizer& tok, const std::string& blob_kind) {
  const TokenizerBlob blob = tok.to_blob();
  EXPECT_EQ(blob.kind, blob_kind);
  const auto rebuilt = tokenizer_from_blob(blob, kOrigin);
  expect_same_tokenizer(tok, *rebuilt);
  const TokenizerBlob again = rebuilt->to_blob();
  EXPECT_EQ(again.kind, blob.kind);
  EXPECT_TRUE(again.bytes == blob.bytes) << "blob changed on a round trip";
  return blob;
}

std::string le32(int32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i)
    s[i] = static_cast<char>((static_cast<uint32_t>(v) >> (8 * i)) & 0xFF);
  return s;
}

TEST(TokenizerBlob, SentencePieceCarriesTheModelFile) {
  const std::string path = shared_path("models/ref-m/tokenizer.model");
  const TokenizerBlob blob = check_round_trip(*load_sentencepiece_tokenizer(path), "sentencepiece");
  EXPECT_TRUE(blob.bytes == test::read_file(path));
}

TEST(TokenizerBlob, Llama2cCarriesVocabSizeAndFile) {
  const std::string path = shared_path("models/stories260K/tok512.bin");
  const TokenizerBlob blob = check_round_trip(*load_llama2c_tokenizer(path, 512), "llama2c");
  EXPECT_TRUE(blob.bytes == le32(512) + test::read_file(path));
  const std::string llama2 = shared_path("models/llama2-tokenizer/tokenizer.bin");
  check_round_trip(*load_llama2c_tokenizer(llama2, 32000), "llama2c");
}

TEST(TokenizerBlob, HfBpeCarriesJsonAndResolvedSpecialIds) {
  const std::string path = shared_path("models/smollm2-tokenizer/tokenizer.json");
  const auto tok = load_hf_tokenizer(path);
  ASSERT_EQ(tok->bos_id(), 1);  // from config.json beside the file
  const TokenizerBlob blob = check_round_trip(*tok, "hf-bpe");
  EXPECT_TRUE(blob.bytes == le32(1) + le32(2) + test::read_file(path));

  // Ids taken from a side file that the blob's reader never sees survive the trip.
  const std::string dir = test::temp_dir();
  test::write_file(dir + "/tokenizer.json", test::read_file(path));
  test::write_file(dir + "/config.json", R"({"bos_token_id": 5, "eos_token_id": [7, 8]})");
  const auto custom = load_hf_tokenizer(dir + "/tokenizer.json");
  ASSERT_EQ(custom->bos_id(), 5);
  ASSERT_EQ(custom->eos_id(), 7);
  const auto rebuilt = tokenizer_from_blob(custom->to_blob(), kOrigin);
  EXPECT_EQ(rebuilt->bos_id(), 5);
  EXPECT_EQ(rebuilt->eos_id(), 7);
}

TEST(TokenizerBlob, TiktokenCarriesTheRankFile) {
  const std::string path = shared_path("models/llama3-tokenizer/tokenizer.model");
  const TokenizerBlob blob = check_round_trip(*load_tiktoken_tokenizer(path), "tiktoken");
  EXPECT_TRUE(blob.bytes == test::read_file(path));
}

TEST(TokenizerBlob, SpmVocabFromSentencePieceModel) {
  const SpmVocab v = load_sentencepiece_vocab(shared_path("models/ref-m/tokenizer.model"));
  check_round_trip(*make_spm_bpe_tokenizer(v, "gguf-llama"), "spm-vocab");
  // A vocab given directly keeps its tokenizer kind, whatever it is.
  const auto as_llama2c =
      tokenizer_from_blob(make_spm_bpe_tokenizer(v, "llama2c")->to_blob(), kOrigin);
  EXPECT_EQ(as_llama2c->kind(), "llama2c");
}

// Pieces that are not valid UTF-8 and infinite scores survive the JSON form exactly.
TEST(TokenizerBlob, SpmVocabKeepsOddPiecesAndScores) {
  SpmVocab v;
  v.pieces = {"<unk>",
              "<s>",
              "</s>",
              "<0x61>",
              "\xff",
              "\xC3",
              "a",
              "\xff\xC3",
              std::string("n\0ul", 4),
              "\xE2\x96\x81",
              "caf\xC3\xA9"};
  v.scores = {0,     0,
              0,     0,
              -1,    -1,
              -2,    std::numeric_limits<float>::infinity(),
              0.1f,  -std::numeric_limits<float>::infinity(),
              1e-30f};
  v.types = {2, 3, 3, 6, 1, 1, 1, 1, 1, 1, 1};
  v.bos_id = -1;
  v.add_dummy_prefix = false;
  const auto tok = make_spm_bpe_tokenizer(v, "gguf-llama");
  const TokenizerBlob blob = tok->to_blob();
  EXPECT_NE(blob.bytes.find("\"base64\""), std::string::npos);
  const SpmVocabWithKind back = spm_vocab_from_json(blob.bytes, kOrigin);
  EXPECT_EQ(back.tokenizer_kind, "gguf-llama");
  EXPECT_EQ(back.vocab.pieces, v.pieces);
  ASSERT_EQ(back.vocab.scores.size(), v.scores.size());
  for (size_t i = 0; i < v.scores.size(); ++i) EXPECT_EQ(back.vocab.scores[i], v.scores[i]) << i;
  EXPECT_EQ(back.vocab.types, v.types);
  EXPECT_EQ(back.vocab.bos_id, -1);
  EXPECT_FALSE(back.vocab.add_dummy_prefix);
  const auto rebuilt = tokenizer_from_blob(blob, kOrigin);
  for (const std::string s : {"\xff\xC3", "a\xff", "caf\xC3\xA9 \xC3"})
    EXPECT_EQ(rebuilt->encode(s, false), tok->encode(s, false)) << s;
  EXPECT_EQ(rebuilt->encode("\xff\xC3", false), (std::vector<int32_t>{7}));
}

void expect_blob_error(const std::string& kind, const std::string& bytes, const std::string& hint) {
  SCOPED_TRACE(kind + " / " + hint);
  test::expect_error_containing(
      [&] {
        tokenizer_from_blob({kind, bytes}, kOrigin);
      },
      {kOrigin, hint});
}

TEST(TokenizerBlob, MalformedBlobsThrow) {
  expect_blob_error("gguf", "", "unknown tokenizer blob kind 'gguf'");
  expect_blob_error("", "x", "unknown tokenizer blob kind");
  const struct {
    const char* kind;
    std::unique_ptr<Tokenizer> tok;
  } kinds[] = {
      {"sentencepiece", load_sentencepiece_tokenizer(shared_path("models/ref-m/tokenizer.model"))},
      {"llama2c", load_llama2c_tokenizer(shared_path("models/stories260K/tok512.bin"), 512)},
      {"hf-bpe", load_hf_tokenizer(shared_path("models/smollm2-tokenizer/tokenizer.json"))},
      {"tiktoken", load_tiktoken_tokenizer(shared_path("models/llama3-tokenizer/tokenizer.model"))},
      {"spm-vocab",
       make_spm_bpe_tokenizer(load_sentencepiece_vocab(shared_path("models/ref-m/tokenizer.model")),
                              "gguf-llama")},
  };
  for (const auto& k : kinds) {
    const std::string bytes = k.tok->to_blob().bytes;
    expect_blob_error(k.kind, "", k.kind);
    expect_blob_error(k.kind, bytes.substr(0, 3), k.kind);
    // Cut mid-record (half the bytes, moved off a line end for the line-based tiktoken file).
    size_t cut = bytes.size() / 2;
    while (bytes[cut - 1] == '\n' || bytes[cut] == '\n') ++cut;
    expect_blob_error(k.kind, bytes.substr(0, cut), k.kind);
    // The blob of another kind.
    const std::string other = std::string(k.kind) == "tiktoken" ? "sentencepiece" : "tiktoken";
    expect_blob_error(other, bytes, other);
  }
}

TEST(TokenizerBlob, MalformedHeadersThrow) {
  const std::string tok512 = test::read_file(shared_path("models/stories260K/tok512.bin"));
  expect_blob_error("llama2c", le32(500) + tok512, "vocab size does not match");
  expect_blob_error("llama2c", le32(0) + tok512, "needs the vocab size");
  const std::string smol = test::read_file(shared_path("models/smollm2-tokenizer/tokenizer.json"));
  expect_blob_error("hf-bpe", le32(1) + le32(1 << 20) + smol, "bos/eos ids");
  expect_blob_error("hf-bpe", le32(-7) + le32(2) + smol, "bos/eos ids");
  expect_blob_error("hf-bpe", le32(1) + le32(2) + "{nope", "not valid JSON");
}

TEST(TokenizerBlob, MalformedSpmVocabJsonThrows) {
  SpmVocab v;
  v.pieces = {"<unk>", "<s>", "</s>", "a"};
  v.scores = {0, 0, 0, -1};
  v.types = {2, 3, 3, 1};
  const std::string good = make_spm_bpe_tokenizer(v, "gguf-llama")->to_blob().bytes;
  ASSERT_NO_THROW(tokenizer_from_blob({"spm-vocab", good}, kOrigin));
  auto edit = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? s : s.replace(at, from.size(), to);
  };
  expect_blob_error("spm-vocab", "{nope", "not valid JSON");
  expect_blob_error("spm-vocab", "[1, 2]", "unexpected structure");
  expect_blob_error("spm-vocab", R"({"format": "lowbit-spm-vocab", "version": 1})",
                    "unexpected structure");
  expect_blob_error("spm-vocab", edit("\"version\":1", "\"version\":2"), "format or version");
  expect_blob_error("spm-vocab", edit("\"gguf-llama\"", "\"bogus\""), "unknown kind 'bogus'");
  expect_blob_error("spm-vocab", edit("\"a\"]", "{\"base64\": \"*\"}]"), "bad base64");
  expect_blob_error("spm-vocab", edit("-1.0]", "\"-infinity\"]"), "bad score");
  expect_blob_error("spm-vocab", edit("-1.0]", "-1.0, 2.0]"), "disagree");
  expect_blob_error("spm-vocab", edit("3,1]", "3,9]"), "invalid type");
  expect_blob_error("spm-vocab", edit("3,1]", "3,4294967297]"), "type out of range");
  expect_blob_error("spm-vocab", edit("\"bos_id\":1", "\"bos_id\":4"), "bos id 4 out of range");
}

}  // namespace
}  // namespace lowbit
