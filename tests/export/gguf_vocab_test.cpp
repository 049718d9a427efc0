// Tokenizer -> GGUF tokenizer.ggml.* (export/gguf_vocab.h) and back (tokenizer/gguf_bpe.h):
//  - SmolLM2 (hf-bpe) and Llama-3 (tiktoken) give llama.cpp's "gpt2" metadata: pre name,
//    token count and texts, token types of the specials, merges in rank order;
//  - the merges derived from tiktoken's ranks make merge-list BPE encode exactly as tiktoken;
//  - a SmolLM2 model exported to GGUF and loaded back tokenizes the goldens identically;
//  - pre-tokenizers llama.cpp would split differently, and other bad input, throw.
// (llama.cpp's own llama-tokenize on such files: scripts/gguf_tokenize_check.sh.)
#include "export/gguf_vocab.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "export/gguf_export.h"
#include "io/gguf.h"
#include "io/synth_model.h"
#include "model/loader.h"
#include "testutil.h"
#include "tokenizer/gguf_bpe.h"
#include "tokenizer/load.h"
#include "tokenizer/tokenizer_test_util.h"

namespace lowbit {
namespace {

using json = nlohmann::json;

const std::string kSmol = "models/smollm2-tokenizer/tokenizer.json";
const std::string kLlama3 = "models/llama3-tokenizer/tokenizer.model";

// Writes v's metadata alone to a GGUF and opens it.
std::unique_ptr<GgufFile> written(const GgufVocab& v) {
  GgufWriter w;
  add_tokenizer_metadata(w, v);
  const std::string path = test::temp_dir() + "/vocab.gguf";
  w.write(path);
  return std::make_unique<GgufFile>(path);
}

std::vector<std::string> sample_texts() {
  std::vector<std::string> texts = test::odd_strings();
  const json golden = test::load_json("models/smollm2-tokenizer/golden-tokens.json");  // outlives the loop
  for (const json& c : golden["cases"])
    texts.push_back(c["text"].get<std::string>());
  texts.push_back(
      test::read_file(test::shared_path("data/wikitext-2-raw/wiki.test.raw")).substr(0, 20000));
  texts.push_back("x = [1,2,3]\n\tif (a!=b) { return -1; }  // ok\r\n\r\n    ok\n\n\n");
  texts.push_back("'s 'S 'll 'LL 'Re I'M you'D don't\t\t  \n \n");
  return texts;
}

TEST(GgufVocab, SmolLm2IsGpt2WithSmollmPre) {
  const auto tok = load_tokenizer_file(test::shared_path(kSmol));
  const GgufVocab vocab = gguf_vocab_of(*tok, 49152 + 3, "m");  // 3 ids beyond the tokenizer
  const auto g = written(vocab);
  EXPECT_EQ(g->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(g->get_string("tokenizer.ggml.pre"), "smollm");
  const auto& tokens = g->get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 49155u);
  EXPECT_EQ(tokens[0], "<|endoftext|>");
  EXPECT_EQ(tokens[1], "<|im_start|>");
  EXPECT_EQ(tokens[216], "Ġ");  // byte-level text, as in tokenizer.json
  EXPECT_EQ(tokens[49153], "[PAD49153]");
  const std::vector<int64_t> types = g->get_int_array("tokenizer.ggml.token_type");
  ASSERT_EQ(types.size(), 49155u);
  for (int id = 0; id < 17; ++id) EXPECT_EQ(types[id], kTokenControl) << id;  // added, special
  EXPECT_EQ(types[17], kTokenNormal);
  EXPECT_EQ(types[49152], kTokenUnused);
  const auto& merges = g->get_string_array("tokenizer.ggml.merges");
  ASSERT_EQ(merges.size(), 48900u);
  EXPECT_EQ(merges[0], "Ġ t");
  EXPECT_EQ(merges[1], "Ġ a");
  EXPECT_EQ(merges[2], "i n");
  EXPECT_EQ(g->get_int("tokenizer.ggml.bos_token_id"), 1);  // config.json beside it
  EXPECT_EQ(g->get_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_FALSE(g->has("tokenizer.ggml.unknown_token_id"));
  EXPECT_FALSE(g->has("tokenizer.ggml.scores"));
  EXPECT_FALSE(g->get_bool("tokenizer.ggml.add_bos_token"));  // no post_processor
  EXPECT_FALSE(g->get_bool("tokenizer.ggml.add_eos_token"));
}

// The Llama-3 tiktoken tokenizer and its GGUF vocabulary, made once for the tests below.
const Tokenizer& llama3() {
  static const auto tok = load_tokenizer_file(test::shared_path(kLlama3));
  return *tok;
}
const BpeVocab& llama3_vocab() {
  static const BpeVocab v = std::get<BpeVocab>(gguf_vocab_of(llama3(), 128256, "m"));
  return v;
}

TEST(GgufVocab, Llama3TiktokenIsGpt2WithLlamaBpePre) {
  const auto g = written(llama3_vocab());
  EXPECT_EQ(g->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(g->get_string("tokenizer.ggml.pre"), "llama-bpe");
  const auto& tokens = g->get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 128256u);
  EXPECT_EQ(tokens[0], "!");
  EXPECT_EQ(tokens[1917], "Ġworld");
  EXPECT_EQ(tokens[128000], "<|begin_of_text|>");
  EXPECT_EQ(tokens[128009], "<|eot_id|>");
  EXPECT_EQ(tokens[128255], "<|reserved_special_token_250|>");
  const std::vector<int64_t> types = g->get_int_array("tokenizer.ggml.token_type");
  EXPECT_EQ(types[127999], kTokenNormal);
  for (int id = 128000; id < 128256; ++id) ASSERT_EQ(types[id], kTokenControl) << id;
  // Every split of every token into two tokens, by rank: 256 "  " and 257 "    " come first.
  const auto& merges = g->get_string_array("tokenizer.ggml.merges");
  EXPECT_EQ(merges.size(), 280147u);  // as many as Llama 3's HF tokenizer.json has
  ASSERT_GE(merges.size(), 5u);
  EXPECT_EQ(merges[0], "Ġ Ġ");
  EXPECT_EQ(merges[1], "Ġ ĠĠĠ");
  EXPECT_EQ(merges[2], "ĠĠ ĠĠ");
  EXPECT_EQ(merges[3], "ĠĠĠ Ġ");
  EXPECT_EQ(merges[4], "i n");
  EXPECT_EQ(g->get_int("tokenizer.ggml.bos_token_id"), 128000);
  EXPECT_EQ(g->get_int("tokenizer.ggml.eos_token_id"), 128001);
  EXPECT_TRUE(g->get_bool("tokenizer.ggml.add_bos_token"));
}

// Merge-list BPE over the derived merges (the tokenizer built back from the GGUF vocabulary)
// encodes as tiktoken's rank BPE.
TEST(GgufVocab, TiktokenMergesReproduceTiktoken) {
  const Tokenizer& tik = llama3();
  const auto back = make_gguf_bpe_tokenizer(llama3_vocab(), "back");
  EXPECT_EQ(back->kind(), "hf-bpe");
  EXPECT_EQ(back->vocab_size(), 128256);
  EXPECT_EQ(back->bos_id(), 128000);
  size_t n_tokens = 0;
  for (const std::string& s : sample_texts()) {
    const std::vector<int32_t> want = tik.encode(s, true);
    EXPECT_EQ(back->encode(s, true), want) << s.substr(0, 80);
    n_tokens += want.size();
  }
  EXPECT_GT(n_tokens, 4000u);
  // Control tokens are matched in text there (as llama-tokenize does by default).
  std::vector<int32_t> want = {128009};
  for (int32_t id : tik.encode("hi", false)) want.push_back(id);
  EXPECT_EQ(back->encode("<|eot_id|>hi", false), want);
}

// Small derivation cases: every two-token split, by token rank, then left rank, then right.
// The flags survive a round trip through a GGUF vocabulary (the rebuilt tokenizer.json carries
// them in a post_processor and a padding entry): Llama-3 adds BOS; a pad id is kept.
TEST(GgufVocab, AddBosAndPaddingSurviveTheRoundTrip) {
  BpeVocab v = llama3_vocab();
  ASSERT_TRUE(v.add_bos);
  v.pad_id = 128004;  // <|finetune_right_pad_id|>
  const auto back = make_gguf_bpe_tokenizer(v, "back");
  const BpeVocab again = std::get<BpeVocab>(gguf_vocab_of(*back, 128256, "again"));
  EXPECT_TRUE(again.add_bos);
  EXPECT_FALSE(again.add_eos);
  EXPECT_EQ(again.bos_id, v.bos_id);
  EXPECT_EQ(again.pad_id, 128004);
  v.add_bos = false;
  v.pad_id = -1;
  const BpeVocab plain = std::get<BpeVocab>(gguf_vocab_of(*make_gguf_bpe_tokenizer(v, "b"), 128256, "p"));
  EXPECT_FALSE(plain.add_bos);
  EXPECT_EQ(plain.pad_id, -1);
}

TEST(GgufVocab, TiktokenMergesOrder) {
  std::vector<std::string> ranks;
  for (int b = 0; b < 256; ++b) ranks.emplace_back(1, static_cast<char>(b));
  ranks.insert(ranks.end(), {"ab", "bc", "abc", " a"});
  EXPECT_EQ(tiktoken_merges(ranks),
            (std::vector<std::string>{"a b", "b c", "a bc", "ab c", "Ġ a"}));
}

TEST(GgufVocab, SmolLm2ExportLoadsBackTokenizingIdentically) {
  const std::string dir = test::temp_dir();
  SynthOptions so;
  so.hidden = 64, so.intermediate = 128, so.layers = 1, so.heads = 2, so.kv_heads = 2;
  so.vocab = 49152, so.context = 64;
  write_synthetic_model(dir + "/m", so);
  const auto tok = load_tokenizer_file(test::shared_path(kSmol));
  GgufExportOptions opt;
  opt.type = GgmlType::F16;
  export_gguf(open_model_source(dir + "/m"), *tok, opt, dir + "/m.gguf");
  const auto back = load_tokenizer_for(open_model_source(dir + "/m.gguf"), "");
  EXPECT_EQ(back->kind(), "hf-bpe");
  EXPECT_EQ(back->vocab_size(), 49152);
  EXPECT_EQ(back->bos_id(), 1);
  EXPECT_EQ(back->eos_id(), 2);
  const json golden = test::load_json("models/smollm2-tokenizer/golden-tokens.json");  // outlives the loop
  for (const json& c : golden["cases"]) {
    EXPECT_EQ(back->encode(c["text"].get<std::string>(), false),
              c["ids"].get<std::vector<int32_t>>());
  }
  for (const std::string& s : sample_texts()) {
    EXPECT_EQ(back->encode(s, false), tok->encode(s, false)) << s.substr(0, 80);
    for (int32_t id : tok->encode(s, false)) ASSERT_EQ(back->token_bytes(id), tok->token_bytes(id));
  }
  // Exported again, the loaded tokenizer gives the same vocabulary.
  const auto again = std::get<BpeVocab>(gguf_vocab_of(*back, 49152, "again"));
  const auto first = std::get<BpeVocab>(gguf_vocab_of(*tok, 49152, "first"));
  EXPECT_EQ(again.pre, first.pre);
  EXPECT_EQ(again.tokens, first.tokens);
  EXPECT_EQ(again.types, first.types);
  EXPECT_EQ(again.merges, first.merges);
}

// A tiny byte-level tokenizer.json with the given pre_tokenizer and extra model/root fields.
std::unique_ptr<Tokenizer> tiny_hf(const json& pre, const json& extra_model = json::object(),
                                   const json& added = json::array()) {
  json root = {{"normalizer", nullptr}, {"pre_tokenizer", pre}, {"added_tokens", added}};
  root["model"] = {
      {"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}, {"Ġ", 4}}}, {"merges", {"a b"}}};
  root["model"].update(extra_model);
  return hf_tokenizer_from_bytes(root.dump(), -1, -1, "tiny");
}

const json kGpt2Pre = {{"type", "ByteLevel"}, {"add_prefix_space", false}};

TEST(GgufVocab, TinyHfVocabHolesAndAddedTokenTypes) {
  const json added = json::array({{{"id", 3}, {"content", "<|x|>"}, {"special", false}},
                                  {{"id", 5}, {"content", "[user]"}, {"special", false}},
                                  {{"id", 6}, {"content", "<s>"}, {"special", true}}});
  const auto tok = tiny_hf(kGpt2Pre, json::object(), added);
  const auto v = std::get<BpeVocab>(gguf_vocab_of(*tok, 9, "m"));
  EXPECT_EQ(v.pre, "gpt-2");
  EXPECT_EQ(v.tokens, (std::vector<std::string>{"a", "b", "ab", "<|x|>", "Ġ", "[user]", "<s>",
                                                "[PAD7]", "[PAD8]"}));
  EXPECT_EQ(v.types, (std::vector<int32_t>{1, 1, 1, 3, 1, 4, 3, 5, 5}));
  EXPECT_EQ(v.merges, (std::vector<std::string>{"a b"}));
  // Loaded back: unused ids are holes, added tokens keep their content and are matched.
  const auto back = make_gguf_bpe_tokenizer(v, "back");
  EXPECT_EQ(back->vocab_size(), 7);
  EXPECT_EQ(back->encode("ab [user]<s>", false), (std::vector<int32_t>{2, 4, 5, 6}));
}

TEST(GgufVocab, UnknownPreTokenizersAndBadInputThrow) {
  const json other_regex = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"Regex", "\\p{N}{1,2}"}}}, {"behavior", "Isolated"}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}}}};
  test::expect_error([&] { gguf_vocab_of(*tiny_hf(other_regex), 8, "m"); },
                     "none of the llama.cpp pre-tokenizers", "export");
  const json prefix_space = {{"type", "ByteLevel"}, {"add_prefix_space", true}};
  test::expect_error([&] { gguf_vocab_of(*tiny_hf(prefix_space), 8, "m"); },
                     "llama.cpp would split text differently", "export");
  // llama.cpp implies ignore_merges for llama-bpe only.
  test::expect_error(
      [&] {
        gguf_vocab_of(*tiny_hf(kGpt2Pre, {{"ignore_merges", true}}), 8, "m");
      },
      "ignore_merges true", "export");
  const json lstrip = json::array({{{"id", 3}, {"content", "<m>"}, {"lstrip", true}}});
  test::expect_error([&] { gguf_vocab_of(*tiny_hf(kGpt2Pre, json::object(), lstrip), 8, "m"); },
                     "lstrip/rstrip", "export");
  test::expect_error([&] { gguf_vocab_of(*tiny_hf(kGpt2Pre), 3, "m"); },
                     "the tokenizer has 5 pieces but the model only 3", "export");
  // Reading: an unknown pre name, duplicate tokens.
  BpeVocab v = std::get<BpeVocab>(gguf_vocab_of(*tiny_hf(kGpt2Pre), 5, "m"));
  v.pre = "qwen2";
  test::expect_error([&] { make_gguf_bpe_tokenizer(v, "f.gguf"); },
                     "f.gguf: GGUF pre-tokenizer 'qwen2' is not supported", "tokenizer");
  v.pre = "gpt-2";
  v.tokens[1] = "a";
  test::expect_error([&] { make_gguf_bpe_tokenizer(v, "f.gguf"); }, "appears twice", "tokenizer");
}

}  // namespace
}  // namespace lowbit
