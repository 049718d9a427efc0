// Request parsing of the OpenAI-compatible routes: every malformed field is a 400 naming it.
#include "serve/openai_api.h"

#include <gtest/gtest.h>

#include <string>

namespace lowbit {
namespace {

// The ApiError a body gives (status 0 if it parses).
ApiError error_of(const std::string& body, Endpoint e = Endpoint::Completions) {
  try {
    parse_api_request(body, e);
  } catch (const ApiError& err) {
    return err;
  }
  return ApiError(0, "parsed");
}

TEST(OpenAiApi, ParsesACompletionWithDefaultsAndExtensions) {
  const ApiRequest r = parse_api_request(
      R"({"model":"m","prompt":"Hi","max_tokens":5,"temperature":0,"top_k":3,"min_p":0.1,"repeat_penalty":1.1,
          "seed":7,"stop":["\n","END"],"stream":true,"stream_options":{"include_usage":true},"logprobs":2})",
      Endpoint::Completions);
  EXPECT_EQ(r.prompt, "Hi");
  EXPECT_EQ(r.max_tokens, 5);
  EXPECT_EQ(r.sampler.temperature, 0.0f);
  EXPECT_EQ(r.sampler.top_k, 3);
  EXPECT_FLOAT_EQ(r.sampler.min_p, 0.1f);
  EXPECT_FLOAT_EQ(r.sampler.repeat_penalty, 1.1f);
  EXPECT_EQ(r.sampler.seed, 7u);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n", "END"}));
  EXPECT_TRUE(r.stream && r.include_usage);
  EXPECT_EQ(r.top_logprobs, 2);
  const ApiRequest d = parse_api_request(R"({"prompt":[1,2,3]})", Endpoint::Completions);
  EXPECT_EQ(d.prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(d.max_tokens, -1);
  EXPECT_EQ(d.sampler.temperature, 1.0f);  // OpenAI's defaults
  EXPECT_EQ(d.sampler.top_p, 1.0f);
  EXPECT_EQ(d.top_logprobs, -1);
  EXPECT_FALSE(d.has_lora);
  const ApiRequest l = parse_api_request(R"({"prompt":"x","lora":[{"id":1,"scale":0.5},{"id":0}]})", Endpoint::Completions);
  ASSERT_TRUE(l.has_lora);
  ASSERT_EQ(l.lora.size(), 2u);
  EXPECT_EQ(l.lora[0].index, 1);
  EXPECT_EQ(l.lora[0].scale, 0.5f);
  EXPECT_EQ(l.lora[1].scale, 1.0f);
}

TEST(OpenAiApi, ParsesChatMessagesAndChatLogprobs) {
  const ApiRequest r = parse_api_request(
      R"({"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]}],
          "max_completion_tokens":9,"logprobs":true,"top_logprobs":3,"stop":"###"})",
      Endpoint::Chat);
  EXPECT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.max_tokens, 9);
  EXPECT_EQ(r.top_logprobs, 3);
  EXPECT_EQ(r.stop, std::vector<std::string>{"###"});
}

TEST(OpenAiApi, MalformedBodiesAre400sNamingTheField) {
  struct Case {
    const char* body;
    const char* needle;
    Endpoint e = Endpoint::Completions;
  };
  const Case cases[] = {
      {"{", "not valid JSON"},
      {"[1]", "JSON object"},
      {R"({"max_tokens":5})", "'prompt' is required"},
      {R"({"prompt":{"a":1}})", "'prompt' must be"},
      {R"({"prompt":[1,-2]})", "token arrays"},
      {R"({"prompt":["a","b"]})", "'prompt' must be"},
      {R"({"prompt":"x","temperature":"hot"})", "'temperature' must be a number"},
      {R"({"prompt":"x","temperature":3})", "'temperature' must be in"},
      {R"({"prompt":"x","top_p":-0.5})", "'top_p' must be in"},
      {R"({"prompt":"x","max_tokens":0})", "'max_tokens' must be in"},
      {R"({"prompt":"x","max_tokens":2.5})", "'max_tokens' must be an integer"},
      {R"({"prompt":"x","n":0})", "'n' must be in [1, 16]"},
      {R"({"prompt":"x","n":17})", "'n' must be in [1, 16]"},
      {R"({"prompt":"x","n":1.5})", "'n' must be an integer"},
      {R"({"prompt":"x","echo":true})", "'echo' is not supported"},
      {R"({"prompt":"x","stream":"yes"})", "'stream' must be true or false"},
      {R"({"prompt":"x","stop":[1]})", "'stop' must be"},
      {R"({"prompt":"x","stop":""})", "'stop' strings must have"},
      {R"({"prompt":"x","stop":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]})", "more than 16"},
      {R"({"prompt":"x","logprobs":6})", "'logprobs' must be in"},
      {R"({"prompt":"x","frequency_penalty":0.5})", "'frequency_penalty' is not supported"},
      {R"({"prompt":"x","stream_options":3})", "'stream_options' must be an object"},
      {R"({"prompt":"x","model":5})", "'model' must be a string"},
      {R"({"prompt":"x","lora":5})", "'lora' must be an array"},
      {R"({"prompt":"x","lora":[{"scale":1}]})", "integer 'id'"},
      {R"({"prompt":"x","lora":[{"id":0,"scale":"big"}]})", "'scale' must be a number"},
      {R"({"messages":[]})", "'messages' must be a non-empty array", Endpoint::Chat},
      {R"({"messages":[{"content":"hi"}]})", "string 'role'", Endpoint::Chat},
      {R"({"messages":[{"role":"user","content":5}]})", "'content' must be", Endpoint::Chat},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", "only text content", Endpoint::Chat},
      {R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})", "needs 'logprobs'", Endpoint::Chat},
  };
  for (const Case& c : cases) {
    const ApiError e = error_of(c.body, c.e);
    EXPECT_EQ(e.status(), 400) << c.body;
    EXPECT_NE(std::string(e.what()).find(c.needle), std::string::npos) << c.body << " -> " << e.what();
    EXPECT_EQ(e.body()["error"]["type"], "invalid_request_error");
  }
  EXPECT_NE(std::string(error_of(std::string(100000, '[')).what()).find("nested deeper"), std::string::npos);
}

TEST(OpenAiApi, ReplyShapesFollowTheOpenAiSchema) {
  const ApiRequest chat = parse_api_request(R"({"messages":[{"role":"user","content":"x"}]})", Endpoint::Chat);
  const nlohmann::json b = completion_body(chat, "chatcmpl-1", 5, {{"hello", "stop", nullptr}}, 3, 2);
  EXPECT_EQ(b["object"], "chat.completion");
  EXPECT_EQ(b["choices"][0]["index"], 0);
  EXPECT_EQ(b["choices"][0]["message"]["content"], "hello");
  EXPECT_EQ(b["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(b["usage"]["total_tokens"], 5);
  const nlohmann::json first = stream_chunk(chat, "chatcmpl-1", 5, 0, "", nullptr, nullptr, true);
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  const nlohmann::json last = stream_chunk(chat, "chatcmpl-1", 5, 2, "", "length", nullptr, false);
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
  EXPECT_EQ(last["choices"][0]["index"], 2);
  EXPECT_EQ(usage_chunk(chat, "c", 5, 3, 4)["choices"].size(), 0u);
  const ApiRequest comp = parse_api_request(R"({"prompt":"x","n":2})", Endpoint::Completions);
  EXPECT_EQ(comp.n, 2);
  const nlohmann::json two = completion_body(comp, "cmpl-1", 5, {{"t", "length", nullptr}, {"u", "stop", nullptr}}, 1, 2);
  ASSERT_EQ(two["choices"].size(), 2u);
  EXPECT_EQ(two["choices"][0]["text"], "t");
  EXPECT_EQ(two["choices"][1]["text"], "u");
  EXPECT_EQ(two["choices"][1]["index"], 1);
  EXPECT_EQ(two["choices"][1]["finish_reason"], "stop");
  // Invalid UTF-8 (a token that splits a character) is replaced, never a dump() exception.
  EXPECT_EQ(dump_json(nlohmann::json("a\xE2\x82")), "\"a\xEF\xBF\xBD\"");
}

}  // namespace
}  // namespace lowbit
