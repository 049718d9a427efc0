// From messages to prompt ids: the template's BOS/EOS strings, the ids that end a chat reply, and
// linear-time encoding of hostile text.
#include "serve/chat_prompt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "model/loader.h"
#include "serve_test_model.h"
#include "tokenizer/load.h"

namespace lowbit {
namespace {

TEST(ChatPrompt, SentencePieceMapsBosEosStringsAndPrependsBos) {
  LoadedModel& m = test::serve_test_model();
  const ChatSetup s = find_chat_setup(m.source, *m.tokenizer, "");
  EXPECT_NE(s.origin.find("ChatML"), std::string::npos);  // ref-s has no template
  EXPECT_EQ(s.bos_token, "<s>");
  EXPECT_EQ(s.end_ids, std::vector<int32_t>{m.tokenizer->eos_id()});
  const std::vector<int32_t> ids = encode_chat_prompt(*m.tokenizer, s, "Hi</s><s>there");
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids.front(), m.tokenizer->bos_id());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), m.tokenizer->eos_id()), 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), m.tokenizer->bos_id()), 2);
  EXPECT_EQ(encode_chat_prompt(*m.tokenizer, s, "<s>x").front(), m.tokenizer->bos_id());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), m.tokenizer->bos_id()), 2);
}

TEST(ChatPrompt, ManySpecialStringsEncodeInLinearTime) {
  LoadedModel& m = test::serve_test_model();
  const ChatSetup s = find_chat_setup(m.source, *m.tokenizer, "");
  std::string text;
  for (int i = 0; i < 50000; ++i) text += "a</s>";  // quadratic scanning would take minutes
  const std::vector<int32_t> ids = encode_chat_prompt(*m.tokenizer, s, text);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), m.tokenizer->eos_id()), 50000);
}

// A byte-level BPE vocabulary (SmolLM2's) matches its specials itself, and its end-of-turn token
// <|im_end|> ends chat replies besides EOS.
TEST(ChatPrompt, ByteLevelVocabularyEndsTurnsOnItsEndOfTurnToken) {
  ModelSource src;
  src.format = "safetensors";
  src.path = test::shared_path("models/smollm2-tokenizer");
  const std::unique_ptr<Tokenizer> tok = load_tokenizer_file(test::shared_path("models/smollm2-tokenizer/tokenizer.json"));
  const ChatSetup s = find_chat_setup(src, *tok, "");
  const std::vector<int32_t> im_end = tok->encode("<|im_end|>", false);
  ASSERT_EQ(im_end.size(), 1u);
  EXPECT_NE(std::find(s.end_ids.begin(), s.end_ids.end(), im_end[0]), s.end_ids.end());
  const std::vector<int32_t> ids = encode_chat_prompt(*tok, s, "<|im_start|>user\nHi<|im_end|>\n");
  EXPECT_EQ(ids, tok->encode("<|im_start|>user\nHi<|im_end|>\n", false));
}

TEST(ChatPrompt, OverrideTemplateFileAndItsErrors) {
  LoadedModel& m = test::serve_test_model();
  const std::string dir = test::temp_dir();
  test::write_file(dir + "/t.jinja", "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}");
  const ChatSetup s = find_chat_setup(m.source, *m.tokenizer, dir + "/t.jinja");
  EXPECT_EQ(s.origin, dir + "/t.jinja");
  ChatRenderInput in;
  in.messages = nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}});
  EXPECT_EQ(s.tmpl->render(in), "[user] hi\n");
  test::write_file(dir + "/bad.jinja", "{% for m in messages %}");
  test::expect_error([&] { find_chat_setup(m.source, *m.tokenizer, dir + "/bad.jinja"); }, "chat template from", "serve");
  test::expect_error([&] { find_chat_setup(m.source, *m.tokenizer, dir + "/missing.jinja"); }, "cannot read", "serve");
}

// tokenizer_config.json's chat_template may be a list of named templates; entries of another
// shape (a non-string name, here) are skipped, not a json::type_error escaping (issue 14 review).
TEST(ChatPrompt, NamedTemplateListWithOddEntries) {
  LoadedModel& m = test::serve_test_model();
  const std::string dir = test::temp_dir() + "/named";
  std::filesystem::create_directories(dir);
  test::write_file(dir + "/tokenizer_config.json",
                   R"({"chat_template": [{"name": 5, "template": "x"}, 7,
                       {"name": "default", "template": "{{ messages[0].content }}!"}]})");
  ModelSource src;
  src.format = "safetensors";
  src.path = dir;
  const ChatSetup s = find_chat_setup(src, *m.tokenizer, "");
  EXPECT_EQ(s.origin, dir + "/tokenizer_config.json");
  ChatRenderInput in;
  in.messages = nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}});
  EXPECT_EQ(s.tmpl->render(in), "hi!");
}

}  // namespace
}  // namespace lowbit
