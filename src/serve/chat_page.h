// The chat page served at `/` (src/serve/chat_page.html, embedded at build time by CMake): plain
// HTML and JavaScript over /v1/chat/completions with streaming, sampling settings, the model's
// name and the reply speed.
#pragma once

namespace lowbit {

extern const char* const kChatPageHtml;

}  // namespace lowbit
