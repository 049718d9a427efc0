// Chat templates: a model's Jinja chat_template turned into a prompt from an OpenAI-style
// messages list, rendered exactly as transformers.js (@huggingface/jinja) renders it; see
// serve/jinja.h for the engine and its limits.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "serve/jinja.h"

namespace lowbit {

struct ChatRenderInput {
  // Array of {"role": ..., "content": ...}. Content is a string, or (as OpenAI sends it) an array
  // of {"type": "text", "text": ...} parts, passed to the template as given.
  nlohmann::json messages;
  bool add_generation_prompt = true;
  std::string bos_token, eos_token;
  // Further template variables (tools, date_string, ...), merged into the context; the fields
  // above win over keys of the same name.
  nlohmann::json extra = nlohmann::json::object();
};

// The same with key order kept (nlohmann::json sorts object keys). Use it when the template
// prints objects, e.g. tool schemas through tojson, to get the key order the client sent.
struct OrderedChatRenderInput {
  nlohmann::ordered_json messages;
  bool add_generation_prompt = true;
  std::string bos_token, eos_token;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

class ChatTemplate {
 public:
  // Parses once. Throws Error("chat-template", "line N: ...") on a syntax error.
  explicit ChatTemplate(const std::string& source);

  // Throws Error("chat-template", ...) on a runtime error; for the template's
  // raise_exception('msg') the message is exactly msg. `messages` must be an array and `extra`
  // an object. Thread-safe.
  std::string render(const ChatRenderInput& in, const jinja::RenderOptions& options = {}) const;
  std::string render(const OrderedChatRenderInput& in, const jinja::RenderOptions& options = {}) const;

 private:
  jinja::Template template_;
  static jinja::Template parse(const std::string& source);
};

}  // namespace lowbit
