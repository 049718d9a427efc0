#include "tokenizer/load.h"

#include <gtest/gtest.h>

#include "base/error.h"
#include "tokenizer_test_util.h"

namespace lowbit {
namespace {

using test::shared_path;

TEST(LoadTokenizerFile, PicksKindFromFile) {
  EXPECT_EQ(load_tokenizer_file(shared_path("models/ref-m/tokenizer.model"))->kind(),
            "sentencepiece");
  EXPECT_EQ(load_tokenizer_file(shared_path("models/llama2-tokenizer/tokenizer.model"))->kind(),
            "sentencepiece");
  EXPECT_EQ(load_tokenizer_file(shared_path("models/llama3-tokenizer/tokenizer.model"))->kind(),
            "tiktoken");
  EXPECT_EQ(load_tokenizer_file(shared_path("models/smollm2-tokenizer/tokenizer.json"))->kind(),
            "hf-bpe");
  const auto bin = load_tokenizer_file(shared_path("models/stories260K/tok512.bin"), 512);
  EXPECT_EQ(bin->kind(), "llama2c");
  EXPECT_EQ(bin->vocab_size(), 512);
}

TEST(LoadTokenizerFile, SniffsContentWithoutExtension) {
  const std::string dir = test::temp_dir();
  const std::string sp = dir + "/spm";
  const std::string tt = dir + "/ranks.txt";
  const std::string js = dir + "/tok.data";
  test::write_file(sp, test::read_file(shared_path("models/ref-m/tokenizer.model")));
  test::write_file(tt, test::read_file(shared_path("models/llama3-tokenizer/tokenizer.model")));
  test::write_file(js, test::read_file(shared_path("models/smollm2-tokenizer/tokenizer.json")));
  EXPECT_EQ(load_tokenizer_file(sp)->kind(), "sentencepiece");
  EXPECT_EQ(load_tokenizer_file(tt)->kind(), "tiktoken");
  EXPECT_EQ(load_tokenizer_file(js)->kind(), "hf-bpe");
}

TEST(LoadTokenizerFile, Errors) {
  const std::string dir = test::temp_dir();
  test::expect_error_containing(
      [&] { load_tokenizer_file(shared_path("models/stories260K/tok512.bin")); },
      {"tok512.bin", "vocab size"});
  const std::string junk = dir + "/junk.model";
  test::write_file(junk, "hello, I am not a tokenizer\n");
  test::expect_error_containing([&] { load_tokenizer_file(junk); },
                                {junk, "unrecognised tokenizer file"});
  const std::string empty = dir + "/empty.model";
  test::write_file(empty, "");
  test::expect_error_containing([&] { load_tokenizer_file(empty); }, {empty, "unrecognised"});
  const std::string bad_json = dir + "/bad.json";
  test::write_file(bad_json, "{nope");
  test::expect_error_containing([&] { load_tokenizer_file(bad_json); }, {bad_json, "JSON"});
  // A SentencePiece model cut in half is sniffed as one and rejected by the parser.
  const std::string half = dir + "/half.model";
  const std::string good = test::read_file(shared_path("models/ref-m/tokenizer.model"));
  test::write_file(half, good.substr(0, good.size() / 2));
  test::expect_error_containing([&] { load_tokenizer_file(half); }, {half, "SentencePiece"});
  test::expect_error_containing([&] { load_tokenizer_file(dir + "/nope.model"); }, {"nope.model"});
}

}  // namespace
}  // namespace lowbit
