// The OpenAI-compatible request and response bodies of /v1/completions and /v1/chat/completions:
// parsing with every field checked (a bad request is an ApiError with status 400 and an OpenAI
// error body), and the JSON of replies, stream chunks and errors.
//
// Sampling fields: temperature (default 1, as OpenAI), top_p (1), and the llama.cpp extensions
// top_k (0 = off), min_p (0 = off), repeat_penalty / repetition_penalty (1 = off),
// repeat_last_n (64); seed (default: random per request). frequency_penalty and
// presence_penalty are accepted only as 0 (not implemented); echo only as false. n (1 to
// kMaxChoices) asks for that many choices of the same prompt: each is its own scheduler request,
// choice i sampling with seed + i (so a seeded request is reproducible choice by choice).
// ignore_eos (llama.cpp's extension, for benchmarks) keeps generating past the end-of-sequence
// token.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/sampler.h"
#include "serve/scheduler.h"

namespace lowbit {

class Tokenizer;

// A request the server refuses: the HTTP status and an OpenAI-style error.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string type = "invalid_request_error",
           std::string param = "")
      : std::runtime_error(message), status_(status), type_(std::move(type)), param_(std::move(param)) {}
  int status() const { return status_; }
  // {"error": {"message", "type", "param", "code"}}
  nlohmann::json body() const;

 private:
  int status_;
  std::string type_, param_;
};

enum class Endpoint { Completions, Chat };

struct ApiRequest {
  Endpoint endpoint = Endpoint::Completions;
  std::string model;
  std::string prompt;                 // completions: the prompt text (when given as a string)
  std::vector<int32_t> prompt_ids;    // completions: the prompt as token ids (when given so)
  nlohmann::json messages;            // chat: the messages array, checked
  int64_t max_tokens = -1;            // -1: not given (completions: 16; chat: up to the context)
  SamplerParams sampler;
  std::vector<std::string> stop;      // at most kMaxStops, each 1..kMaxStopBytes bytes
  bool stream = false, include_usage = false, ignore_eos = false;
  int top_logprobs = -1;              // -1: no logprobs; else how many alternatives per token
  bool has_lora = false;              // "lora": [{"id": i, "scale": s}, ...] given (llama-server's field)
  std::vector<AdapterUse> lora;
  int n = 1;                          // choices, 1 .. kMaxChoices
};

inline constexpr int kMaxChoices = 16;

inline constexpr int kMaxStops = 16;
inline constexpr size_t kMaxStopBytes = 256;

// Parses a request body. Throws ApiError(400, ...) for malformed JSON (depth-limited), a wrong
// type or a value out of range, naming the field.
ApiRequest parse_api_request(const std::string& body, Endpoint e);


// One finished choice of a reply.
struct ChoiceReply {
  std::string text;
  const char* finish_reason = nullptr;  // "stop" / "length"
  nlohmann::json logprobs;              // null without logprobs
};

// Reply objects. `id` like "cmpl-..."/"chatcmpl-...", `created` in Unix seconds. The choices
// get their index in `choices`; completion_tokens is their sum, prompt_tokens counted once.
nlohmann::json completion_body(const ApiRequest& r, const std::string& id, int64_t created,
                               const std::vector<ChoiceReply>& choices, int64_t prompt_tokens,
                               int64_t completion_tokens);
// One stream chunk of choice `index`; finish_reason nullptr for a chunk in the middle; `text`
// is the delta; `first`: the choice's first chunk (chat: it carries the role).
nlohmann::json stream_chunk(const ApiRequest& r, const std::string& id, int64_t created, int index,
                            const std::string& text, const char* finish_reason,
                            const nlohmann::json& logprobs, bool first);
// The last chunk when stream_options.include_usage: empty choices and the usage.
nlohmann::json usage_chunk(const ApiRequest& r, const std::string& id, int64_t created,
                           int64_t prompt_tokens, int64_t completion_tokens);
// The logprobs object of `events` in the endpoint's shape (completions: tokens /
// token_logprobs / top_logprobs / text_offset from `offset0`; chat: content[] with bytes).
nlohmann::json logprobs_json(const ApiRequest& r, const Tokenizer& tok,
                             const std::vector<TokenEvent>& events, int64_t offset0);

// JSON text with invalid UTF-8 (a token that splits a character) replaced by U+FFFD.
std::string dump_json(const nlohmann::json& j);

}  // namespace lowbit
