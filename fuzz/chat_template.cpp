// Chat templates (the Jinja subset: lexer, parser, evaluator, filters, builtins) rendered with a
// messages list. Input: the template source, a NUL byte, then the request's messages as JSON
// (when it is not a JSON array a fixed two-message conversation is used). Render limits are
// lowered from the server's defaults so that one input cannot take seconds.
#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "serve/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto parts = fuzz::split_once(input, std::string_view("\0", 1));
  const std::string source(parts.first);
  const std::string_view messages_text = parts.second;
  OrderedChatRenderInput in;
  in.messages = nlohmann::ordered_json::parse(messages_text, nullptr, false);
  if (in.messages.is_discarded() || !in.messages.is_array())
    in.messages = nlohmann::ordered_json::parse(
        R"([{"role":"system","content":"Be brief."},{"role":"user","content":"Hi <b>&</b>"}])");
  in.bos_token = "<s>";
  in.eos_token = "</s>";
  jinja::RenderOptions options;
  options.max_output_bytes = 1 << 16;
  options.max_loop_iterations = 20'000;
  options.max_steps = 200'000;
  options.max_depth = 100;
  options.now = 0;
  fuzz::run_parser([&] {
    const ChatTemplate t(source);
    (void)t.render(in, options);
  });
  return 0;
}
