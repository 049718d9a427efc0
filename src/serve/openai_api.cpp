#include "serve/openai_api.h"

#include <cmath>
#include <random>

#include "base/json_depth.h"
#include "tokenizer/tokenizer.h"

namespace lowbit {

using nlohmann::json;

json ApiError::body() const {
  return {{"error", {{"message", what()}, {"type", type_}, {"param", param_.empty() ? json() : json(param_)},
                     {"code", status_}}}};
}

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

namespace {

[[noreturn]] void bad(const std::string& field, const std::string& what) {
  throw ApiError(400, "'" + field + "' " + what, "invalid_request_error", field);
}

double number_field(const json& body, const std::string& key, double fallback, double lo, double hi) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_number()) bad(key, "must be a number");
  const double v = it->get<double>();
  if (!(v >= lo && v <= hi)) bad(key, "must be in [" + json(lo).dump() + ", " + json(hi).dump() + "]");
  return v;
}

int64_t int_field(const json& body, const std::string& key, int64_t fallback, int64_t lo, int64_t hi) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_number_integer() && !(it->is_number_float() && std::floor(it->get<double>()) == it->get<double>()))
    bad(key, "must be an integer");
  const double v = it->get<double>();
  if (!(v >= static_cast<double>(lo) && v <= static_cast<double>(hi)))
    bad(key, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int64_t>(v);
}

bool bool_field(const json& body, const std::string& key, bool fallback) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) bad(key, "must be true or false");
  return it->get<bool>();
}

std::vector<std::string> stop_field(const json& body) {
  auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return {};
  std::vector<std::string> stops;
  if (it->is_string()) {
    stops.push_back(it->get<std::string>());
  } else if (it->is_array()) {
    if (it->size() > static_cast<size_t>(kMaxStops)) bad("stop", "has more than " + std::to_string(kMaxStops) + " strings");
    for (const json& s : *it) {
      if (!s.is_string()) bad("stop", "must be a string or an array of strings");
      stops.push_back(s.get<std::string>());
    }
  } else {
    bad("stop", "must be a string or an array of strings");
  }
  for (const std::string& s : stops)
    if (s.empty() || s.size() > kMaxStopBytes) bad("stop", "strings must have 1 to " + std::to_string(kMaxStopBytes) + " bytes");
  return stops;
}

SamplerParams sampler_fields(const json& body) {
  SamplerParams p;
  p.temperature = static_cast<float>(number_field(body, "temperature", 1.0, 0.0, 2.0));
  p.top_p = static_cast<float>(number_field(body, "top_p", 1.0, 0.0, 1.0));
  if (p.top_p == 0.0f) p.top_p = 1e-6f;  // OpenAI accepts 0: keep only the most likely token
  p.top_k = static_cast<int32_t>(int_field(body, "top_k", 0, 0, 1 << 30));
  p.min_p = static_cast<float>(number_field(body, "min_p", 0.0, 0.0, 1.0));
  const double rp = number_field(body, "repetition_penalty", 1.0, 1e-3, 100.0);
  p.repeat_penalty = static_cast<float>(number_field(body, "repeat_penalty", rp, 1e-3, 100.0));
  p.repeat_last_n = static_cast<int32_t>(int_field(body, "repeat_last_n", 64, 0, 1 << 20));
  const int64_t seed = int_field(body, "seed", -1, std::numeric_limits<int64_t>::min() / 2,
                                 std::numeric_limits<int64_t>::max() / 2);
  p.seed = body.contains("seed") && !body["seed"].is_null() ? static_cast<uint64_t>(seed) : std::random_device{}();
  for (const char* k : {"frequency_penalty", "presence_penalty"})
    if (number_field(body, k, 0.0, -2.0, 2.0) != 0.0) bad(k, "is not supported (use repeat_penalty)");
  return p;
}

void check_messages(const json& m) {
  if (!m.is_array() || m.empty()) bad("messages", "must be a non-empty array");
  for (const json& msg : m) {
    if (!msg.is_object()) bad("messages", "entries must be objects");
    auto role = msg.find("role");
    if (role == msg.end() || !role->is_string()) bad("messages", "entries need a string 'role'");
    auto content = msg.find("content");
    if (content == msg.end() || content->is_null()) continue;  // e.g. an assistant turn with tool calls
    if (content->is_string()) continue;
    if (!content->is_array()) bad("messages", "'content' must be a string or an array of parts");
    for (const json& part : *content)
      if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
          !part["text"].is_string())
        bad("messages", "only text content parts are supported");
  }
}

void prompt_field(const json& body, ApiRequest& r) {
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) bad("prompt", "is required");
  if (it->is_string()) {
    r.prompt = it->get<std::string>();
    return;
  }
  if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
    r.prompt = (*it)[0].get<std::string>();
    return;
  }
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) {
    for (const json& t : *it) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
        bad("prompt", "token arrays must hold non-negative integer ids");
      r.prompt_ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
    return;
  }
  bad("prompt", "must be a string, an array with one string, or an array of token ids");
}

}  // namespace

ApiRequest parse_api_request(const std::string& text, Endpoint e) {
  if (json_depth(text) > kMaxJsonDepth) throw ApiError(400, "request JSON nested deeper than 64 levels");
  json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) throw ApiError(400, "the request body is not valid JSON");
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
  ApiRequest r;
  r.endpoint = e;
  if (auto m = body.find("model"); m != body.end() && !m->is_null()) {
    if (!m->is_string()) bad("model", "must be a string");
    r.model = m->get<std::string>();
  }
  if (e == Endpoint::Chat) {
    check_messages(body.value("messages", json()));
    r.messages = body["messages"];
  } else {
    prompt_field(body, r);
  }
  const int64_t mt = int_field(body, "max_tokens", -1, 1, int64_t{1} << 40);
  r.max_tokens = e == Endpoint::Chat ? int_field(body, "max_completion_tokens", mt, 1, int64_t{1} << 40) : mt;
  r.sampler = sampler_fields(body);
  r.stop = stop_field(body);
  r.stream = bool_field(body, "stream", false);
  r.ignore_eos = bool_field(body, "ignore_eos", false);
  if (auto so = body.find("stream_options"); so != body.end() && !so->is_null()) {
    if (!so->is_object()) bad("stream_options", "must be an object");
    r.include_usage = bool_field(*so, "include_usage", false);
  }
  if (auto l = body.find("lora"); l != body.end() && !l->is_null()) {
    if (!l->is_array() || l->size() > 16) bad("lora", "must be an array of at most 16 {\"id\", \"scale\"} objects");
    r.has_lora = true;
    for (const json& e : *l) {
      if (!e.is_object()) bad("lora", "entries must be objects with an integer 'id'");
      const int64_t id = int_field(e, "id", -1, 0, 1 << 20);
      if (id < 0) bad("lora", "entries need an integer 'id'");
      r.lora.push_back({static_cast<int32_t>(id), static_cast<float>(number_field(e, "scale", 1.0, -100.0, 100.0))});
    }
  }
  r.n = static_cast<int>(int_field(body, "n", 1, 1, kMaxChoices));
  if (bool_field(body, "echo", false)) bad("echo", "is not supported");
  if (e == Endpoint::Chat) {
    if (bool_field(body, "logprobs", false)) r.top_logprobs = static_cast<int>(int_field(body, "top_logprobs", 0, 0, 20));
    else if (body.contains("top_logprobs") && !body["top_logprobs"].is_null()) bad("top_logprobs", "needs 'logprobs': true");
  } else {
    r.top_logprobs = static_cast<int>(int_field(body, "logprobs", -1, 0, 5));
  }
  return r;
}

namespace {

json usage(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

json reason(const char* finish_reason) { return finish_reason ? json(finish_reason) : json(); }

}  // namespace

json completion_body(const ApiRequest& r, const std::string& id, int64_t created,
                     const std::vector<ChoiceReply>& choices, int64_t prompt_tokens, int64_t completion_tokens) {
  json list = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceReply& c = choices[i];
    json choice = {{"index", i}, {"logprobs", c.logprobs}, {"finish_reason", reason(c.finish_reason)}};
    if (r.endpoint == Endpoint::Chat)
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    else
      choice["text"] = c.text;
    list.push_back(std::move(choice));
  }
  return {{"id", id},
          {"object", r.endpoint == Endpoint::Chat ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", r.model},
          {"choices", std::move(list)},
          {"usage", usage(prompt_tokens, completion_tokens)}};
}

json stream_chunk(const ApiRequest& r, const std::string& id, int64_t created, int index, const std::string& text,
                  const char* finish_reason, const json& logprobs, bool first) {
  json choice = {{"index", index}, {"logprobs", logprobs}, {"finish_reason", reason(finish_reason)}};
  if (r.endpoint == Endpoint::Chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && !finish_reason)) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  return {{"id", id},
          {"object", r.endpoint == Endpoint::Chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", r.model},
          {"choices", json::array({choice})}};
}

json usage_chunk(const ApiRequest& r, const std::string& id, int64_t created, int64_t prompt_tokens,
                 int64_t completion_tokens) {
  return {{"id", id},
          {"object", r.endpoint == Endpoint::Chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", r.model},
          {"choices", json::array()},
          {"usage", usage(prompt_tokens, completion_tokens)}};
}

json logprobs_json(const ApiRequest& r, const Tokenizer& tok, const std::vector<TokenEvent>& events, int64_t offset0) {
  if (r.top_logprobs < 0) return json();
  auto bytes_of = [](const std::string& s) {
    json b = json::array();
    for (unsigned char c : s) b.push_back(c);
    return b;
  };
  if (r.endpoint == Endpoint::Chat) {
    json content = json::array();
    for (const TokenEvent& e : events) {
      const std::string t = tok.token_bytes(e.id);
      json top = json::array();
      for (const auto& [id, lp] : e.top) {
        const std::string s = tok.token_bytes(id);
        top.push_back({{"token", s}, {"logprob", lp}, {"bytes", bytes_of(s)}});
      }
      content.push_back({{"token", t}, {"logprob", e.logprob}, {"bytes", bytes_of(t)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  json tokens = json::array(), token_logprobs = json::array(), top = json::array(), offsets = json::array();
  int64_t offset = offset0;
  for (const TokenEvent& e : events) {
    const std::string t = tok.token_bytes(e.id);
    tokens.push_back(t);
    token_logprobs.push_back(e.logprob);
    json alts = json::object();
    for (const auto& [id, lp] : e.top) alts[tok.token_bytes(id)] = lp;
    top.push_back(alts);
    offsets.push_back(offset);
    offset += static_cast<int64_t>(t.size());
  }
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top}, {"text_offset", offsets}};
}

}  // namespace lowbit
