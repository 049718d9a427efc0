#include "serve/http_server.h"

#include <httplib.h>

#include <cstdio>
#include <thread>
#include <ctime>

#include "base/error.h"
#include "serve/chat_page.h"
#include "serve/openai_api.h"
#include "serve/peer_socket.h"
#include "serve/stop_matcher.h"

namespace lowbit {

using nlohmann::json;

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(50);

// One choice of a generation: its own scheduler request, whose tokens become text (complete
// UTF-8 characters only) and pass the stop strings.
struct Choice {
  std::shared_ptr<RequestHandle> handle;
  StreamDecoder decoder;
  StopMatcher stops;
  int64_t completion_tokens = 0, text_offset = 0;
  bool first_chunk = true, finished = false;

  Choice(std::shared_ptr<RequestHandle> h, const Tokenizer& tok, std::vector<std::string> stop_strings)
      : handle(std::move(h)), decoder(tok, /*continues_text=*/true), stops(std::move(stop_strings)) {}
};

// One request as a handler sees it: its n choices leave as one reply or as stream chunks.
struct Generation {
  // Counts the replies in progress while it lives (ApiServer::stop waits for them).
  struct Live {
    std::atomic<int>& n;
    explicit Live(std::atomic<int>& c) : n(c) { ++n; }
    ~Live() { --n; }
  } live;
  ApiRequest req;
  std::vector<std::unique_ptr<Choice>> choices;  // req.n of them
  std::string id;
  int64_t created = 0;
  int socket = -1;  // the client's connection (serve/peer_socket.h), -1 if not found

  // The client has hung up (checked without writing to it).
  bool client_gone() const { return socket >= 0 && peer_hung_up(socket); }
  void cancel() const {
    for (const auto& c : choices) c->handle->cancel();
  }
  int64_t prompt_tokens() const { return choices.front()->handle->prompt_tokens(); }
  int64_t completion_tokens() const {
    int64_t n = 0;
    for (const auto& c : choices) n += c->completion_tokens;
    return n;
  }

  Generation(std::atomic<int>& live_count, ApiRequest r, std::string id_)
      : live(live_count), req(std::move(r)), id(std::move(id_)), created(static_cast<int64_t>(std::time(nullptr))) {}
};

// What one poll of a choice produced.
struct Progress {
  std::string text;
  std::vector<TokenEvent> events;
  bool finished = false;
  const char* finish_reason = nullptr;  // "stop" / "length" once finished without error
  int error_status = 0;                 // 500 (generation failed) or 503 (server shutting down)
  std::string error;
};

Progress poll(Choice& g, std::chrono::milliseconds wait) {
  Progress p;
  const bool more = g.handle->next(p.events, wait);
  size_t used = 0;  // tokens up to the one that completed a stop string; later ones are dropped
  for (const TokenEvent& e : p.events) {
    if (g.stops.stopped()) break;
    ++g.completion_tokens;
    ++used;
    p.text += g.stops.push(g.decoder.push(e.id));
  }
  p.events.resize(used);
  if (!g.stops.stopped() && !more) {
    p.text += g.stops.push(g.decoder.flush());
    p.text += g.stops.flush();
  }
  if (g.stops.stopped()) {
    g.handle->cancel();
    p.finished = g.finished = true;
    p.finish_reason = "stop";
    return p;
  }
  if (more) return p;
  p.finished = g.finished = true;
  switch (g.handle->finish_reason()) {
    case FinishReason::Eos: p.finish_reason = "stop"; break;
    case FinishReason::Length:
    case FinishReason::Context: p.finish_reason = "length"; break;
    case FinishReason::Error: p.error_status = 500, p.error = "generation failed: " + g.handle->error(); break;
    default: p.error_status = 503, p.error = "the server is shutting down"; break;
  }
  return p;
}

// How long one poll of a choice may wait: the poll interval shared by the unfinished choices.
std::chrono::milliseconds choice_wait(const Generation& g) {
  int64_t open = 0;
  for (const auto& c : g.choices) open += c->finished ? 0 : 1;
  return std::max(std::chrono::milliseconds(1), kPollInterval / std::max<int64_t>(open, 1));
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump_json(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  if (e.status() == 503) res.set_header("Retry-After", "1");
  send_json(res, e.status(), e.body());
}

std::string sse(const json& j) { return "data: " + dump_json(j) + "\n\n"; }

}  // namespace

struct ApiServer::Impl {
  const Tokenizer& tok;
  const ChatSetup& chat;
  Scheduler& sched;
  ServerOptions opt;
  httplib::Server svr;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  int64_t started_unix = static_cast<int64_t>(std::time(nullptr));
  std::atomic<uint64_t> next_id{0};
  std::atomic<int64_t> http_requests{0}, client_errors{0}, server_errors{0};
  std::atomic<bool> stopping{false};
  std::atomic<int> live_replies{0};

  Impl(const Tokenizer& t, const ChatSetup& c, Scheduler& s, ServerOptions o) : tok(t), chat(c), sched(s), opt(std::move(o)) {}

  std::shared_ptr<Generation> start(const std::string& body, Endpoint e);
  void reply_whole(Generation& g, httplib::Response& res);
  void reply_stream(std::shared_ptr<Generation> g, httplib::Response& res);
  // One call of the chunked content provider: writes what is ready; false ends the response.
  bool stream_step(Generation& g, httplib::DataSink& sink);
  std::string metrics() const;
};

ApiServer::ApiServer(const Tokenizer& tok, const ChatSetup& chat, Scheduler& sched, ServerOptions opt)
    : impl_(std::make_unique<Impl>(tok, chat, sched, std::move(opt))) {
  install_routes();
}

ApiServer::~ApiServer() = default;

std::shared_ptr<Generation> ApiServer::Impl::start(const std::string& body, Endpoint e) {
  ApiRequest r = parse_api_request(body, e);
  r.model = opt.model_name;
  std::vector<int32_t> prompt;
  std::vector<std::string> stop_strings = r.stop;
  if (e == Endpoint::Chat) {
    ChatRenderInput in;
    in.messages = r.messages;
    in.add_generation_prompt = true;
    in.bos_token = chat.bos_token;
    in.eos_token = chat.eos_token;
    std::string text;
    try {
      text = chat.tmpl->render(in);
    } catch (const Error& err) {
      throw ApiError(400, "the chat template refused the messages: " + std::string(err.message()), "invalid_request_error", "messages");
    }
    prompt = encode_chat_prompt(tok, chat, text);
    if (!chat.eos_token.empty()) stop_strings.push_back(chat.eos_token);  // an end-of-turn written as text
  } else if (!r.prompt_ids.empty()) {
    prompt = r.prompt_ids;
  } else {
    prompt = tok.encode(r.prompt, /*add_bos=*/true);
    if (prompt.empty()) throw ApiError(400, "the prompt is empty", "invalid_request_error", "prompt");
  }
  GenRequest g;
  g.prompt = std::move(prompt);
  const int64_t room = sched.ctx() - static_cast<int64_t>(g.prompt.size());
  g.max_tokens = r.max_tokens > 0 ? r.max_tokens : (e == Endpoint::Chat ? std::max<int64_t>(room, 1) : 16);
  g.sampler = r.sampler;
  if (!r.ignore_eos) g.stop_ids = e == Endpoint::Chat ? chat.end_ids : std::vector<int32_t>{tok.eos_id()};
  g.top_logprobs = r.top_logprobs;
  if (r.has_lora) {
    for (const AdapterUse& u : r.lora)
      if (u.index >= static_cast<int32_t>(opt.adapters.size()))
        throw ApiError(400, "'lora' id " + std::to_string(u.index) + " does not exist (the server has " +
                                std::to_string(opt.adapters.size()) + " adapters, see /lora-adapters)",
                       "invalid_request_error", "lora");
    g.adapters = r.lora;
  } else {
    for (size_t i = 0; i < opt.adapters.size(); ++i) g.adapters.push_back({static_cast<int32_t>(i), 1.0f});
  }
  const std::string id = (e == Endpoint::Chat ? "chatcmpl-" : "cmpl-") + std::to_string(started_unix) + "-" +
                         std::to_string(next_id.fetch_add(1));
  auto gen = std::make_shared<Generation>(live_replies, std::move(r), id);
  const uint64_t seed = gen->req.sampler.seed;
  for (int i = 0; i < gen->req.n; ++i) {
    GenRequest gi = g;
    gi.sampler.seed = seed + static_cast<uint64_t>(i);
    std::shared_ptr<RequestHandle> h;
    try {
      h = sched.submit(std::move(gi));
    } catch (const Error& err) {
      gen->cancel();
      throw ApiError(400, std::string(err.message()), "invalid_request_error", e == Endpoint::Chat ? "messages" : "prompt");
    }
    if (!h) {
      gen->cancel();  // all or nothing: the choices already admitted leave again
      throw ApiError(503, "the server is busy (request queue full) or shutting down; retry later", "server_error");
    }
    gen->choices.push_back(std::make_unique<Choice>(std::move(h), tok, stop_strings));
  }
  return gen;
}

void ApiServer::Impl::reply_whole(Generation& g, httplib::Response& res) {
  const size_t n = g.choices.size();
  std::vector<ChoiceReply> replies(n);
  std::vector<std::vector<TokenEvent>> events(n);
  for (size_t open = n; open > 0;) {
    if (g.client_gone()) {  // nobody to reply to: free the slots now, not at max_tokens
      g.cancel();
      res.status = 499;  // never sent: the connection is closed (nginx's "client closed request")
      return;
    }
    const std::chrono::milliseconds wait = choice_wait(g);
    for (size_t i = 0; i < n; ++i) {
      Choice& c = *g.choices[i];
      if (c.finished) continue;
      Progress p = poll(c, wait);
      replies[i].text += p.text;
      for (TokenEvent& e : p.events) events[i].push_back(std::move(e));
      if (!p.finished) continue;
      if (p.error_status) {
        g.cancel();
        throw ApiError(p.error_status, p.error, p.error_status == 503 ? "server_error" : "internal_error");
      }
      replies[i].finish_reason = p.finish_reason;
      replies[i].logprobs = logprobs_json(g.req, tok, events[i], 0);
      --open;
    }
  }
  send_json(res, 200, completion_body(g.req, g.id, g.created, replies, g.prompt_tokens(), g.completion_tokens()));
}

bool ApiServer::Impl::stream_step(Generation& g, httplib::DataSink& sink) {
  auto write = [&](const std::string& s) {
    if (sink.write(s.data(), s.size())) return true;
    g.cancel();  // the client is gone: free its slots
    return false;
  };
  if (g.req.endpoint == Endpoint::Chat) {
    for (size_t i = 0; i < g.choices.size(); ++i) {
      Choice& c = *g.choices[i];
      if (!c.first_chunk) continue;
      if (!write(sse(stream_chunk(g.req, g.id, g.created, static_cast<int>(i), "", nullptr, json(), true)))) return false;
      c.first_chunk = false;
    }
  }
  const std::chrono::milliseconds wait = choice_wait(g);
  bool all_finished = true;
  for (size_t i = 0; i < g.choices.size(); ++i) {
    Choice& c = *g.choices[i];
    if (c.finished) continue;
    const int index = static_cast<int>(i);
    Progress p = poll(c, wait);
    if (!p.text.empty() || (g.req.top_logprobs >= 0 && !p.events.empty())) {
      const json lp = logprobs_json(g.req, tok, p.events, c.text_offset);
      for (const TokenEvent& e : p.events) c.text_offset += static_cast<int64_t>(tok.token_bytes(e.id).size());
      if (!write(sse(stream_chunk(g.req, g.id, g.created, index, p.text, nullptr, lp, c.first_chunk)))) return false;
      c.first_chunk = false;
    }
    if (!p.finished) {
      all_finished = false;
      continue;
    }
    if (p.error_status) {  // the whole reply ends with the error
      g.cancel();
      if (!write(sse(ApiError(p.error_status, p.error, "server_error").body())) || !write("data: [DONE]\n\n")) return false;
      sink.done();
      return true;
    }
    if (!write(sse(stream_chunk(g.req, g.id, g.created, index, "", p.finish_reason, json(), c.first_chunk)))) return false;
  }
  if (!all_finished) {
    if (sink.is_writable() && !g.client_gone()) return true;
    g.cancel();
    return false;
  }
  if (g.req.include_usage &&
      !write(sse(usage_chunk(g.req, g.id, g.created, g.prompt_tokens(), g.completion_tokens()))))
    return false;
  if (!write("data: [DONE]\n\n")) return false;
  sink.done();
  return true;
}

void ApiServer::Impl::reply_stream(std::shared_ptr<Generation> g, httplib::Response& res) {
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, g](size_t, httplib::DataSink& sink) {
        try {
          return stream_step(*g, sink);
        } catch (const std::exception&) {  // out of memory: end this stream, keep the server
          g->cancel();
          return false;
        }
      },
      [g](bool) { g->cancel(); });  // finished or not, the request holds nothing after this
}

std::string ApiServer::Impl::metrics() const {
  const SchedulerStats s = sched.stats();
  const double uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, double v) {
    char line[256];
    std::snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
    out += line;
  };
  metric("lowbit_requests_total", "counter", "Generation requests accepted.", static_cast<double>(s.requests_total));
  metric("lowbit_requests_rejected_total", "counter", "Generation requests refused because the queue was full.",
         static_cast<double>(s.rejected_total));
  metric("lowbit_requests_active", "gauge", "Requests being prefilled or decoded.", s.active);
  metric("lowbit_requests_queued", "gauge", "Requests waiting for a slot.", s.queued);
  metric("lowbit_prompt_tokens_total", "counter", "Prompt tokens prefilled.", static_cast<double>(s.prompt_tokens_total));
  metric("lowbit_generated_tokens_total", "counter", "Tokens generated.", static_cast<double>(s.generated_tokens_total));
  metric("lowbit_batch_steps_total", "counter", "Batched forward passes.", static_cast<double>(s.steps_total));
  metric("lowbit_busy_seconds_total", "counter", "Seconds spent in forward passes and sampling.", s.busy_seconds);
  metric("lowbit_generated_tokens_per_busy_second", "gauge", "Generated tokens per second of model time.",
         s.busy_seconds > 0 ? static_cast<double>(s.generated_tokens_total) / s.busy_seconds : 0.0);
  metric("lowbit_kv_cache_tokens", "gauge", "KV cache positions in blocks alive (requests and prefix cache).",
         static_cast<double>(s.kv_tokens));
  metric("lowbit_kv_cache_tokens_peak", "gauge", "The most KV cache positions alive at once since the server started.",
         static_cast<double>(s.kv_tokens_peak));
  metric("lowbit_kv_cache_bytes", "gauge", "KV cache bytes in blocks alive.", static_cast<double>(s.kv_bytes));
  metric("lowbit_kv_cache_budget_bytes", "gauge", "KV cache budget in bytes.", static_cast<double>(s.kv_budget_bytes));
  metric("lowbit_prefix_cache_blocks", "gauge", "Prompt-prefix KV blocks kept for reuse.", static_cast<double>(s.prefix_blocks));
  metric("lowbit_prefix_reused_tokens_total", "counter", "Prompt tokens taken from the prefix cache instead of prefilled.",
         static_cast<double>(s.prefix_reused_tokens_total));
  metric("lowbit_http_requests_total", "counter", "HTTP requests answered.", static_cast<double>(http_requests.load()));
  metric("lowbit_http_client_errors_total", "counter", "HTTP 4xx answers.", static_cast<double>(client_errors.load()));
  metric("lowbit_http_server_errors_total", "counter", "HTTP 5xx answers.", static_cast<double>(server_errors.load()));
  metric("lowbit_uptime_seconds", "gauge", "Seconds since the server started.", uptime);
  return out;
}

void ApiServer::install_routes() {
  Impl& m = *impl_;
  httplib::Server& svr = m.svr;
  // A connection waits for a worker thread before anything reads it, out of the scheduler's
  // sight: with twice as many workers as the scheduler holds requests, every request reaches a
  // worker at once and is either admitted, queued or refused with 503 there.
  const int64_t wanted = m.opt.http_threads > 0
                            ? m.opt.http_threads
                            : 2 * (int64_t{m.sched.options().parallel} + m.sched.options().max_queue) + 16;
  const int threads = static_cast<int>(std::min<int64_t>(wanted, kMaxHttpThreads));
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  svr.set_payload_max_length(m.opt.max_body_bytes);
  svr.set_read_timeout(30, 0);
  svr.set_write_timeout(30, 0);
  svr.set_keep_alive_timeout(5);
  svr.set_pre_routing_handler([&m](const httplib::Request& req, httplib::Response& res) {
    if (m.opt.api_key.empty() || !req.path.starts_with("/v1/")) return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + m.opt.api_key)
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, ApiError(401, "invalid or missing API key (send 'Authorization: Bearer <key>')", "authentication_error"));
    return httplib::Server::HandlerResponse::Handled;
  });
  auto generate = [&m](Endpoint e) {
    // The body is read here, not by the library: its size limit applies to Content-Length only,
    // and a chunked body must stop at the same limit.
    return [&m, e](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
      try {
        std::string body;
        const bool read = reader([&](const char* data, size_t n) {
          if (body.size() + n > m.opt.max_body_bytes) return false;
          body.append(data, n);
          return true;
        });
        // Not read: over the limit (our receiver, or the library's check of Content-Length) or a
        // connection that broke mid-body.
        if (!read) throw ApiError(413, "the request body is larger than " + std::to_string(m.opt.max_body_bytes) + " bytes");
        std::shared_ptr<Generation> g = m.start(body, e);
        g->socket = connection_socket(req.remote_addr, req.remote_port, req.local_port);
        if (g->req.stream)
          m.reply_stream(std::move(g), res);
        else
          m.reply_whole(*g, res);
      } catch (const ApiError& err) {
        send_error(res, err);
      }
    };
  };
  svr.Post("/v1/completions", generate(Endpoint::Completions));
  svr.Post("/v1/chat/completions", generate(Endpoint::Chat));
  svr.Get("/v1/models", [&m](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"object", "list"},
                         {"data", json::array({{{"id", m.opt.model_name}, {"object", "model"},
                                                {"created", m.started_unix}, {"owned_by", "lowbit"}}})}});
  });
  svr.Get("/lora-adapters", [&m](const httplib::Request&, httplib::Response& res) {
    json list = json::array();
    for (size_t i = 0; i < m.opt.adapters.size(); ++i) list.push_back({{"id", i}, {"path", m.opt.adapters[i]}, {"scale", 1.0}});
    send_json(res, 200, list);
  });
  svr.Get("/health", [&m](const httplib::Request&, httplib::Response& res) {
    if (m.stopping.load())
      send_json(res, 503, {{"status", "shutting down"}});
    else
      send_json(res, 200, {{"status", "ok"}});
  });
  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kChatPageHtml, "text/html; charset=utf-8");
  });
  svr.Get("/metrics", [&m](const httplib::Request&, httplib::Response& res) {
    res.set_content(m.metrics(), "text/plain; version=0.0.4");
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, ApiError(500, what, "internal_error"));
  });
  svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // our own error body
    if (res.status == 404)
      send_error(res, ApiError(404, "no route " + req.method + " " + req.path, "invalid_request_error"));
    else if (res.status == 413)
      send_error(res, ApiError(413, "the request body is too large", "invalid_request_error"));
    else
      send_error(res, ApiError(res.status, "HTTP error " + std::to_string(res.status), "invalid_request_error"));
  });
  svr.set_logger([&m](const httplib::Request&, const httplib::Response& res) {
    ++m.http_requests;
    if (res.status >= 500) ++m.server_errors;
    else if (res.status >= 400) ++m.client_errors;
  });
}

int ApiServer::bind() {
  Impl& m = *impl_;
  const int port = m.opt.port == 0 ? m.svr.bind_to_any_port(m.opt.host)
                                   : (m.svr.bind_to_port(m.opt.host, m.opt.port) ? m.opt.port : -1);
  if (port <= 0)
    throw Error("serve", "cannot listen on " + m.opt.host + ":" + std::to_string(m.opt.port) +
                             " (address in use, or not an address of this machine)");
  return port;
}

void ApiServer::serve() { impl_->svr.listen_after_bind(); }

void ApiServer::begin_shutdown() { impl_->stopping.store(true); }

void ApiServer::stop() {
  impl_->stopping.store(true);
  // Let replies whose last tokens are out write their end ([DONE]) before the sockets close.
  for (int i = 0; i < 200 && impl_->live_replies.load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  impl_->svr.stop();
}

}  // namespace lowbit
