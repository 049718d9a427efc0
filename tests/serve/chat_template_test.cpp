// ChatTemplate against goldens made by the reference renderer (@huggingface/jinja, see
// make_chat_goldens.mjs): every case must match byte for byte, or fail with the same message.
#include "serve/chat_template.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "base/error.h"
#include "testutil.h"

namespace lowbit {
namespace {

using nlohmann::ordered_json;

const ordered_json& goldens() {
  static const ordered_json g = ordered_json::parse(test::read_file(test::test_source_path("serve/data/chat_goldens.json")));
  return g;
}

std::string template_source(const std::string& file) {
  return test::read_file(test::test_source_path("serve/data/chat_templates/" + file));
}

OrderedChatRenderInput input_of(const ordered_json& in) {
  OrderedChatRenderInput r;
  r.messages = in.at("messages");
  r.add_generation_prompt = in.at("add_generation_prompt").get<bool>();
  r.bos_token = in.at("bos_token").get<std::string>();
  r.eos_token = in.at("eos_token").get<std::string>();
  r.extra = in.at("extra");
  return r;
}

TEST(ChatTemplateGoldens, EveryCaseMatchesTheReference) {
  const ordered_json& cases = goldens().at("cases");
  ASSERT_GE(cases.size(), 200u);
  std::map<std::string, std::unique_ptr<ChatTemplate>> templates;
  int passed = 0, errors = 0;
  for (const ordered_json& c : cases) {
    const std::string file = c.at("template").get<std::string>();
    const std::string label = file + " " + c.at("name").get<std::string>();
    auto& tpl = templates[file];
    if (!tpl) tpl = std::make_unique<ChatTemplate>(template_source(file));
    const OrderedChatRenderInput in = input_of(c.at("input"));
    if (c.contains("expected")) {
      std::string out;
      try {
        out = tpl->render(in);
      } catch (const Error& e) {
        ADD_FAILURE() << label << ": unexpected error " << e.what();
        continue;
      }
      EXPECT_EQ(out, c.at("expected").get<std::string>()) << label;
      passed += out == c.at("expected").get<std::string>();
    } else {
      const std::string want = c.at("error").get<std::string>();
      test::expect_error([&] { tpl->render(in); }, want, "chat-template");
      ++errors;
    }
  }
  EXPECT_GT(errors, 10);
  EXPECT_EQ(passed + errors, static_cast<int>(cases.size()));
}

TEST(ChatTemplateGoldens, CoversEveryTemplateFile) {
  std::map<std::string, int> per_file;
  for (const ordered_json& c : goldens().at("cases")) ++per_file[c.at("template").get<std::string>()];
  for (const char* f : {"llama2-chat.jinja", "llama3-instruct.jinja", "llama3.1-instruct.jinja", "mistral-7b-instruct-v0.1.jinja",
                        "mistral-7b-instruct-v0.3.jinja", "qwen2-instruct.jinja", "gemma-2-it.jinja", "phi-3-mini-instruct.jinja",
                        "smollm2-instruct.jinja", "zephyr.jinja", "deepseek-coder-instruct.jinja", "deepseek-r1-distill.jinja"}) {
    EXPECT_GE(per_file[f], 20) << f;
  }
}

TEST(ChatTemplate, RaiseExceptionMessageIsTheTemplatesText) {
  ChatTemplate tpl(template_source("gemma-2-it.jinja"));
  ChatRenderInput in;
  in.messages = nlohmann::json::array({{{"role", "system"}, {"content", "x"}}, {{"role", "user"}, {"content", "y"}}});
  try {
    tpl.render(in);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.component(), "chat-template");
    EXPECT_EQ(std::string(e.message()), "System role not supported");
  }
}

TEST(ChatTemplate, UnorderedInputRendersLikeOrderedForMessages) {
  ChatTemplate tpl(template_source("llama3-instruct.jinja"));
  ChatRenderInput in;
  in.messages = nlohmann::json::parse(R"([{"role":"user","content":"Hi \u00e9 {{x}}"}])");
  in.bos_token = "<|begin_of_text|>";
  EXPECT_EQ(tpl.render(in),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi \xc3\xa9 {{x}}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  in.add_generation_prompt = false;
  EXPECT_EQ(tpl.render(in), "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi \xc3\xa9 {{x}}<|eot_id|>");
}

TEST(ChatTemplate, ExtraVariablesReachTheTemplateAndFieldsWin) {
  ChatTemplate tpl("{{ bos_token }}|{{ date_string }}|{{ messages | length }}|{{ add_generation_prompt }}");
  OrderedChatRenderInput in;
  in.messages = ordered_json::array();
  in.bos_token = "<s>";
  in.extra = {{"date_string", "1 Jan 2025"}, {"bos_token", "ignored"}};
  EXPECT_EQ(tpl.render(in), "<s>|1 Jan 2025|0|true");
}

TEST(ChatTemplate, ToolSchemasKeepKeyOrderWithOrderedInput) {
  ChatTemplate tpl("{{ tools[0] | tojson }}");
  OrderedChatRenderInput in;
  in.messages = ordered_json::array();
  in.extra = ordered_json::parse(R"({"tools":[{"type":"function","function":{"name":"f","description":"d"}}]})");
  EXPECT_EQ(tpl.render(in), R"({"type": "function", "function": {"name": "f", "description": "d"}})");
}

TEST(ChatTemplate, SyntaxErrorsNameTheLine) {
  test::expect_error([] { ChatTemplate("line one\n{% if x %}\n{{ y }\n"); }, "line 3", "chat-template");
  test::expect_error([] { ChatTemplate("{% for m in messages %}\n{{ m }}"); }, "line 1", "chat-template");
  test::expect_error([] { ChatTemplate("ok\n\n{{ 'unterminated }}"); }, "line 3", "chat-template");
}

TEST(ChatTemplate, BadInputShapesAreErrors) {
  ChatTemplate tpl("{{ messages[0].content }}");
  ChatRenderInput in;
  in.messages = nlohmann::json::object();
  test::expect_error([&] { tpl.render(in); }, "messages must be a JSON array", "chat-template");
  in.messages = nlohmann::json::array();
  in.extra = 3;
  test::expect_error([&] { tpl.render(in); }, "extra", "chat-template");
}

TEST(ChatTemplate, RuntimeErrorsNameTheLine) {
  ChatTemplate tpl("a\nb\n{{ messages[0].content | trim }}");
  ChatRenderInput in;
  in.messages = nlohmann::json::array({{{"role", "user"}, {"content", nlohmann::json::array({1})}}});
  test::expect_error([&] { tpl.render(in); }, "line 3: Unknown ArrayValue filter: trim", "chat-template");
}

TEST(ChatTemplate, SmolLM2TemplateMatchesSharedTokenizerModel) {
  // The shared SmolLM2 tokenizer ships no tokenizer_config.json; the committed template is the
  // public one. Rendering it must produce the ChatML prompt SmolLM2 was tuned on.
  ChatTemplate tpl(template_source("smollm2-instruct.jinja"));
  ChatRenderInput in;
  in.messages = nlohmann::json::array({{{"role", "user"}, {"content", "Hi"}}});
  EXPECT_EQ(tpl.render(in),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace lowbit
