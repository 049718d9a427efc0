#include "serve/chat_template.h"

#include "base/error.h"

namespace lowbit {

namespace {

constexpr const char* kComponent = "chat-template";

nlohmann::ordered_json make_context(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                    const std::string& bos, const std::string& eos, const nlohmann::ordered_json& extra) {
  if (!messages.is_array()) throw Error(kComponent, "messages must be a JSON array");
  if (!extra.is_null() && !extra.is_object()) throw Error(kComponent, "extra template variables must be a JSON object");
  nlohmann::ordered_json ctx = extra.is_object() ? extra : nlohmann::ordered_json::object();
  ctx["messages"] = messages;
  ctx["add_generation_prompt"] = add_generation_prompt;
  ctx["bos_token"] = bos;
  ctx["eos_token"] = eos;
  return ctx;
}

template <class F>
auto as_chat_error(F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    if (e.component() == kComponent) throw;
    throw Error(kComponent, e.message());
  }
}

}  // namespace

jinja::Template ChatTemplate::parse(const std::string& source) {
  return as_chat_error([&] { return jinja::Template(source); });
}

ChatTemplate::ChatTemplate(const std::string& source) : template_(parse(source)) {}

std::string ChatTemplate::render(const ChatRenderInput& in, const jinja::RenderOptions& options) const {
  return as_chat_error([&] {
    const nlohmann::ordered_json messages = in.messages, extra = in.extra;
    return template_.render(make_context(messages, in.add_generation_prompt, in.bos_token, in.eos_token, extra), options);
  });
}

std::string ChatTemplate::render(const OrderedChatRenderInput& in, const jinja::RenderOptions& options) const {
  return as_chat_error([&] {
    return template_.render(make_context(in.messages, in.add_generation_prompt, in.bos_token, in.eos_token, in.extra),
                            options);
  });
}

}  // namespace lowbit
