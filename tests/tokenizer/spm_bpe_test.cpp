#include <gtest/gtest.h>

#include <chrono>
#include <sstream>

#include "base/error.h"
#include "tokenizer/llama2c_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/spm_bpe_tokenizer.h"
#include "tokenizer_test_util.h"

namespace lowbit {
namespace {

using test::shared_path;

const std::string kRefM = "models/ref-m/tokenizer.model";
const std::string kWiki = "data/wikitext-2-raw/wiki.test.raw";

std::vector<std::string> wiki_lines(size_t max_lines) {
  std::istringstream in(test::read_file(shared_path(kWiki)));
  std::vector<std::string> lines;
  std::string line;
  while (lines.size() < max_lines && std::getline(in, line)) lines.push_back(line);
  return lines;
}

// Our SPM-BPE over the pieces/scores/types libsentencepiece reports for ref-m's model must
// give libsentencepiece's ids (this is the GGUF-vocab path).
TEST(SpmBpe, MatchesLibSentencePieceOnWikiLines) {
  const auto sp = load_sentencepiece_tokenizer(shared_path(kRefM));
  const auto ours =
      make_spm_bpe_tokenizer(load_sentencepiece_vocab(shared_path(kRefM)), "gguf-llama");
  EXPECT_EQ(ours->kind(), "gguf-llama");
  EXPECT_EQ(ours->vocab_size(), sp->vocab_size());
  const auto lines = wiki_lines(400);
  ASSERT_EQ(lines.size(), 400u);
  int mismatches = 0;
  for (const auto& line : lines) {
    const auto want = sp->encode(line, true);
    const auto got = ours->encode(line, true);
    if (got != want && ++mismatches <= 3) ADD_FAILURE() << "ids differ for line: " << line;
    EXPECT_EQ(ours->decode(got), sp->decode(want));
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(SpmBpe, MatchesLibSentencePieceOnOddStrings) {
  for (const std::string& model : {kRefM, std::string("models/llama2-tokenizer/tokenizer.model")}) {
    const auto sp = load_sentencepiece_tokenizer(shared_path(model));
    const auto ours =
        make_spm_bpe_tokenizer(load_sentencepiece_vocab(shared_path(model)), "gguf-llama");
    auto cases = test::odd_strings();
    cases.push_back("▁already▁has▁meta▁spaces");    // literal U+2581 acts as a space in both
    cases.push_back("\xff\xfe invalid \xC3 utf8");  // differs by design: not compared for ids
    for (size_t i = 0; i + 1 < cases.size(); ++i)
      EXPECT_EQ(ours->encode(cases[i], false), sp->encode(cases[i], false)) << cases[i];
    for (int32_t id = 0; id < sp->vocab_size(); ++id)
      ASSERT_EQ(ours->token_bytes(id), sp->token_bytes(id)) << id;
    // Ill-formed bytes: libsentencepiece turns them into U+FFFD; we keep them as byte tokens,
    // so they round-trip.
    EXPECT_EQ(ours->decode(ours->encode(cases.back(), false)), cases.back());
  }
}

// Whole-file agreement (the perplexity tool tokenizes whole files). No timing asserted here;
// the elapsed times are printed for information.
TEST(SpmBpe, MatchesLibSentencePieceOnWholeWikiFile) {
  const std::string text = test::read_file(shared_path(kWiki));
  const auto sp = load_sentencepiece_tokenizer(shared_path(kRefM));
  const auto ours =
      make_spm_bpe_tokenizer(load_sentencepiece_vocab(shared_path(kRefM)), "gguf-llama");
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const auto want = sp->encode(text, false);
  const auto t1 = clock::now();
  const auto got = ours->encode(text, false);
  const auto t2 = clock::now();
  std::printf("wiki.test.raw (%zu bytes, %zu tokens): libsentencepiece %.2fs, spm-bpe %.2fs\n",
              text.size(), want.size(), std::chrono::duration<double>(t1 - t0).count(),
              std::chrono::duration<double>(t2 - t1).count());
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want);
  EXPECT_EQ(ours->decode(got), text);
}

TEST(SpmBpe, SpecialLookingTextStaysPlain) {
  // Text spelling control/byte/unknown pieces is segmented into normal pieces, as sentencepiece
  // does (only normal/user-defined/unused pieces are merge targets).
  const auto bin =
      load_llama2c_tokenizer(shared_path("models/llama2-tokenizer/tokenizer.bin"), 32000);
  const auto sp =
      load_sentencepiece_tokenizer(shared_path("models/llama2-tokenizer/tokenizer.model"));
  for (const std::string s : {"<0x0A>", "<unk>", "a<0x41>b", "x<s>y</s>"}) {
    const auto ids = bin->encode(s, false);
    EXPECT_EQ(ids, sp->encode(s, false)) << s;
    for (int32_t id : ids) EXPECT_GE(id, 259) << s;  // no unk/control/byte token
    EXPECT_EQ(bin->decode(ids), s);
  }
}

SpmVocab tiny_vocab() {
  // ids: 0 unk, 1 bos, 2 eos, 3..4 bytes, then normal pieces.
  SpmVocab v;
  v.pieces = {"<unk>", "<s>", "</s>", "<0x61>", "<0x62>", "▁", "a", "b", "ab", "▁a", "▁ab", "ba"};
  v.scores = {0, 0, 0, 0, 0, -10, -1, -1, -2, -3, -4, -2};
  v.types = {2, 3, 3, 6, 6, 1, 1, 1, 1, 1, 1, 1};
  return v;
}

TEST(SpmBpe, HighestScoreLeftmostMerge) {
  SpmVocab v = tiny_vocab();
  const auto tok = make_spm_bpe_tokenizer(v, "gguf-llama");
  // "▁aba": pairs ▁a(-3) ab(-2) ba(-2): "ab" wins the tie by being leftmost, then "▁ab"(-4).
  EXPECT_EQ(tok->encode("aba", false), (std::vector<int32_t>{10, 6}));
  // Make "ba" score higher: "▁a" + "ba".
  v.scores[11] = -1.5f;
  const auto tok2 = make_spm_bpe_tokenizer(v, "gguf-llama");
  EXPECT_EQ(tok2->encode("aba", false), (std::vector<int32_t>{9, 11}));
  v.add_dummy_prefix = false;
  const auto tok3 = make_spm_bpe_tokenizer(v, "gguf-llama");
  EXPECT_EQ(tok3->encode("aba", false), (std::vector<int32_t>{6, 11}));
  EXPECT_FALSE(tok3->strips_leading_space());
  EXPECT_EQ(tok3->decode(tok3->encode(" a", false)), " a");
}

TEST(SpmBpe, UnknownCharactersWithoutByteFallback) {
  SpmVocab v = tiny_vocab();
  v.types[3] = v.types[4] = kTokenUnused;  // no byte tokens left: unk, one per run
  v.pieces[3] = "q1";
  v.pieces[4] = "q2";
  const auto tok = make_spm_bpe_tokenizer(v, "gguf-llama");
  EXPECT_EQ(tok->encode("axyb", false), (std::vector<int32_t>{9, 0, 7}));
  EXPECT_EQ(tok->encode("ax b", false), (std::vector<int32_t>{9, 0, 5, 7}));
  EXPECT_EQ(tok->token_bytes(0), " \xE2\x81\x87 ");
}

TEST(SpmBpe, UnusedPiecesAreResegmented) {
  SpmVocab v = tiny_vocab();
  v.types[10] = kTokenUnused;  // "▁ab" may still be formed, then is split into its merge parts
  const auto tok = make_spm_bpe_tokenizer(v, "gguf-llama");
  // "▁ab" was made from "▁" + "ab" ("ab" merges first at -2), so it resegments into those.
  EXPECT_EQ(tok->encode("ab", false), (std::vector<int32_t>{5, 8}));
}

TEST(SpmBpe, UserDefinedPiecesMatchFirst) {
  SpmVocab v = tiny_vocab();
  v.pieces.push_back("<ba>");
  v.scores.push_back(0);
  v.types.push_back(kTokenUserDefined);
  const auto tok = make_spm_bpe_tokenizer(v, "gguf-llama");
  EXPECT_EQ(tok->encode("a<ba>b", false), (std::vector<int32_t>{9, 12, 7}));
}

TEST(SpmBpe, InvalidVocabThrows) {
  auto bad = [](auto mutate, const std::string& hint) {
    SpmVocab v = tiny_vocab();
    mutate(v);
    test::expect_error_containing([&] { make_spm_bpe_tokenizer(v, "gguf-llama", "my.gguf"); },
                                  {"my.gguf", hint});
  };
  bad([](SpmVocab& v) { v.scores.pop_back(); }, "disagree");
  bad([](SpmVocab& v) { v.types.push_back(1); }, "disagree");
  bad([](SpmVocab& v) { v.bos_id = 12; }, "bos id 12 out of range");
  bad([](SpmVocab& v) { v.eos_id = -2; }, "eos id");
  bad([](SpmVocab& v) { v.unk_id = 99; }, "unk id");
  bad([](SpmVocab& v) { v.types[5] = 9; }, "invalid type");
  bad([](SpmVocab& v) { v.types[5] = -1; }, "invalid type");
  bad([](SpmVocab& v) { v.pieces[6].clear(); }, "empty piece");
  bad([](SpmVocab& v) { v = SpmVocab{}; }, "empty vocabulary");
  test::expect_error_containing([&] { make_spm_bpe_tokenizer(tiny_vocab(), "bogus"); }, {"bogus"});
}

}  // namespace
}  // namespace lowbit
