// The HTTP front of `lowbit serve` (cpp-httplib, Debian's libcpp-httplib-dev: a maintained,
// dependency-free library with a thread-pool server, chunked responses for SSE and per-connection
// timeouts; one worker thread per open connection, so the pool is sized well above the scheduler's
// active slots plus its queue: overflow is answered 503 by the scheduler, not left waiting).
//
// Routes: POST /v1/completions, POST /v1/chat/completions (both with "stream": true as
// server-sent events ending in "data: [DONE]"; "lora": [{"id", "scale"}] picks the switchable
// adapters, default all at scale 1), GET /v1/models, GET /lora-adapters, GET /health, GET /metrics
// (Prometheus text), GET / (the chat page, serve/chat_page.h). With an API key every /v1 route needs
// "Authorization: Bearer KEY" (401 otherwise). Errors are OpenAI-style JSON bodies: 400 for a bad
// request, 401, 404, 413 for a body over the limit (chunked bodies too), 503 when the queue is full or the server is
// shutting down (with Retry-After), 500 if generation fails.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "serve/chat_prompt.h"
#include "serve/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace httplib {
class Server;
}

namespace lowbit {

inline constexpr int64_t kMaxHttpThreads = 1024;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                     // 0: any free port (tests)
  std::string api_key;                 // empty: no authentication
  std::string model_name = "lowbit";   // what /v1/models lists and replies carry
  size_t max_body_bytes = 8 << 20;
  std::vector<std::string> adapters;  // the model's switchable LoRA adapters (paths), by index
  int http_threads = 0;                // 0: 2 · (parallel + queue) + 16
};

class ApiServer {
 public:
  ApiServer(const Tokenizer& tok, const ChatSetup& chat, Scheduler& sched, ServerOptions opt);
  ~ApiServer();
  // Binds the listening socket; returns the port. Throws lowbit::Error("serve", ...) when the
  // address cannot be bound (in use, bad host).
  int bind();
  // Serves until stop() (call from another thread or a signal-watching thread).
  void serve();
  // /health answers 503 from now on (the scheduler is draining).
  void begin_shutdown();
  // Waits (at most 10 s) for replies in progress to write their end, then stops accepting
  // connections and returns once the workers are done. A stop() before serve() began listening
  // does nothing: call it again once serve() runs.
  void stop();

 private:
  void install_routes();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit
