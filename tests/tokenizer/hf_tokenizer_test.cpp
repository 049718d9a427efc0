#include <gtest/gtest.h>

#include "base/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer_test_util.h"

namespace lowbit {
namespace {

using test::load_json;
using test::shared_path;

const std::string kSmol = "models/smollm2-tokenizer/tokenizer.json";

TEST(HfTokenizer, SmolLM2GoldenTokens) {
  const auto golden = load_json("models/smollm2-tokenizer/golden-tokens.json");
  const auto tok = load_hf_tokenizer(shared_path(kSmol));
  EXPECT_EQ(tok->kind(), "hf-bpe");
  EXPECT_EQ(tok->vocab_size(), 49152);
  ASSERT_GE(golden["cases"].size(), 10u);
  for (const auto& c : golden["cases"]) {
    const std::string text = c["text"];
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode(text, false), ids) << text;
    EXPECT_EQ(tok->decode(ids), c["decoded"].get<std::string>()) << text;
    test::expect_stream_matches_decode(*tok, ids);
  }
}

TEST(HfTokenizer, SmolLM2SpecialsFromConfigJson) {
  // config.json beside tokenizer.json: bos_token_id 1 (<|im_start|>), eos_token_id 2 (<|im_end|>).
  const auto tok = load_hf_tokenizer(shared_path(kSmol));
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->encode("a", true), (std::vector<int32_t>{1, 81}));
  EXPECT_EQ(tok->token_bytes(0), "<|endoftext|>");  // added tokens decode to their content
  EXPECT_EQ(tok->token_bytes(216), " ");            // "Ġ"
  EXPECT_EQ(tok->token_bytes(198), "\n");           // "Ċ"
  EXPECT_EQ(tok->token_bytes(49152), "");
}

TEST(HfTokenizer, OddUtf8RoundTrips) {
  const auto tok = load_hf_tokenizer(shared_path(kSmol));
  for (const auto& s : test::odd_strings()) test::expect_round_trip(*tok, s);
  // Byte-level: ill-formed UTF-8 round-trips too, as long as its bytes are in the vocab ...
  const std::string invalid = "\xE6 invalid \xC3 utf8 \xE6\x97";
  EXPECT_EQ(tok->decode(tok->encode(invalid, false)), invalid);
  // ... but SmolLM2's vocab lacks 21 byte characters (0x04, 0x06, 0xC0, 0xC1, 0xF5..0xFF, ...);
  // with no unk token and no byte fallback HF drops such characters, and so do we.
  EXPECT_EQ(tok->encode("\x04", false), std::vector<int32_t>{});
  EXPECT_EQ(tok->encode("a\xFF\xFE", false), (std::vector<int32_t>{81}));
}

TEST(HfTokenizer, ByteLevelAlphabet) {
  const auto& a = byte_level_alphabet();
  EXPECT_EQ(a['A'], "A");
  EXPECT_EQ(a[' '], "\xC4\xA0");   // U+0120 'Ġ'
  EXPECT_EQ(a['\n'], "\xC4\x8A");  // U+010A 'Ċ'
  EXPECT_EQ(a[0], "\xC4\x80");     // U+0100
  EXPECT_EQ(a[0xAD], "\xC5\x83");  // soft hyphen is the 68th remapped byte: U+0143
  EXPECT_EQ(a[0xFF], "\xC3\xBF");  // 'ÿ' maps to itself
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_EQ(byte_level_to_bytes(bytes_to_byte_level(all)), all);
}

// A tiny tokenizer.json written by the test, to pin individual features.
std::string write_json(const std::string& name, const std::string& text) {
  const std::string path = test::temp_dir() + "/" + name;
  test::write_file(path, text);
  return path;
}

const char* kTinyModel =
    R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4, "abc": 5, "Ġ": 6, "1": 7, "2": 8, "<x>": 9},
    "merges": [["b", "c"], "a b", "a bc"]})";

TEST(HfTokenizer, MergeRanksAndPairForm) {
  const std::string path = write_json(
      "tiny.json",
      std::string("{") + kTinyModel +
          R"(, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}})");
  const auto tok = load_hf_tokenizer(path);
  // "bc" has rank 0 so "abc" -> a + bc -> abc (rank 2), never through "ab".
  EXPECT_EQ(tok->encode("abc", false), (std::vector<int32_t>{5}));
  EXPECT_EQ(tok->encode("ab", false), (std::vector<int32_t>{3}));
  EXPECT_EQ(tok->encode("cab a", false), (std::vector<int32_t>{2, 3, 6, 0}));
  EXPECT_EQ(tok->vocab_size(), 10);
  EXPECT_EQ(tok->bos_id(), -1);
  EXPECT_EQ(tok->eos_id(), -1);
}

TEST(HfTokenizer, DigitsAndAddedTokens) {
  const std::string path = write_json("digits.json", std::string("{") + kTinyModel + R"(,
    "added_tokens": [{"id": 9, "content": "<x>", "special": true, "lstrip": false, "rstrip": false}],
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Digits", "individual_digits": true},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}]}})");
  const auto tok = load_hf_tokenizer(path);
  EXPECT_EQ(tok->encode("12<x>ab", false), (std::vector<int32_t>{7, 8, 9, 3}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{7, 8, 9, 3}), "12<x>ab");
}

TEST(HfTokenizer, SplitBehaviors) {
  const std::string pre = R"(, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"String": "b"}, "behavior": "BEHAVIOR", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]}})";
  auto ids_for = [&](const std::string& behavior, const std::string& text) {
    std::string p = pre;
    p.replace(p.find("BEHAVIOR"), 8, behavior);
    return load_hf_tokenizer(write_json(behavior + ".json", std::string("{") + kTinyModel + p))
        ->encode(text, false);
  };
  EXPECT_EQ(ids_for("Isolated", "abc"), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(ids_for("Removed", "abc"), (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(ids_for("MergedWithPrevious", "abc"), (std::vector<int32_t>{3, 2}));
  EXPECT_EQ(ids_for("MergedWithNext", "abc"), (std::vector<int32_t>{0, 4}));
  EXPECT_EQ(ids_for("Contiguous", "abbc"), (std::vector<int32_t>{0, 1, 1, 2}));
}

TEST(HfTokenizer, MalformedFilesThrow) {
  const std::string byte_level = R"("pre_tokenizer": {"type": "ByteLevel"})";
  struct Case {
    std::string name, text, hint;
  };
  const std::vector<Case> cases = {
      {"bad.json", "{\"model\": {\"type\": \"BPE\", ", "not valid JSON"},
      {"array.json", "[1, 2]", "not a tokenizer.json"},
      {"no_model.json", "{" + byte_level + "}", "no \"model\""},
      {"no_vocab.json", R"({"model": {"type": "BPE", "merges": []}, )" + byte_level + "}",
       "model.vocab"},
      {"no_merges.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}}, )" + byte_level + "}",
       "model.merges"},
      {"bad_merge.json",
       R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a z"]}, )" +
           byte_level + "}",
       "merge 0 'a z'"},
      {"merge_result.json",
       R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}, )" + byte_level +
           "}",
       "not in model.vocab"},
      {"bad_merge_str.json",
       R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["ab"]}, )" + byte_level + "}",
       "malformed merge"},
      {"wordpiece.json",
       R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}, )" + byte_level + "}", "WordPiece"},
      {"vocab_type.json",
       R"({"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}, )" + byte_level + "}",
       "structure"},
      {"neg_id.json",
       R"({"model": {"type": "BPE", "vocab": {"a": -4}, "merges": []}, )" + byte_level + "}",
       "out of range"},
      {"normalizer.json",
       R"({"normalizer": {"type": "NFC"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, )" +
           byte_level + "}",
       "normalizer 'NFC'"},
      {"not_bytelevel.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})",
       "byte-level"},
      {"bad_regex.json",
       R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Sequence",
        "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}, {"type": "ByteLevel"}]}})",
       "bad regex"},
      {"unknown_pre.json",
       R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Metaspace"}})",
       "Metaspace"},
      // Issue 14: one huge id would size the id table; deep nesting would overflow the stack.
      {"sparse_id.json",
       R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 2147483646}, "merges": []}, )" + byte_level + "}",
       "far beyond the 2 entries"},
      {"nested_pre.json",
       R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": )" +
           std::string(20000, '[') + std::string(20000, ']') + "}",
       "nested deeper than 64"},
      {"nested_merge.json",
       R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [)" + std::string(20000, '[') +
           std::string(20000, ']') + "]}, " + byte_level + "}",
       "nested deeper than 64"},
  };
  for (const auto& c : cases) {
    const std::string path = write_json(c.name, c.text);
    test::expect_error_containing([&] { load_hf_tokenizer(path); }, {path, c.hint});
  }
  test::expect_error_containing([&] { load_hf_tokenizer(test::temp_dir() + "/missing.json"); },
                                {"missing.json"});
}

}  // namespace
}  // namespace lowbit
