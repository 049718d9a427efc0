// The HTTP API end to end on loopback, in process: an ApiServer on a free port and cpp-httplib's
// client. Greedy replies must equal lowbit generate; streams must carry the same text; errors are
// OpenAI-style bodies with the right status. Every wait is bounded.
#include "serve/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <set>
#include <thread>

#include "serve_test_model.h"

namespace lowbit {
namespace {

using nlohmann::json;

class Served {
 public:
  explicit Served(SchedulerOptions so = {}, std::string api_key = "")
      : chat_(find_chat_setup(test::serve_test_model().source, *test::serve_test_model().tokenizer, "")),
        sched_(*test::serve_test_model().model, so) {
    ServerOptions o;
    o.port = 0;
    o.api_key = std::move(api_key);
    o.model_name = "ref-s-int4";
    o.max_body_bytes = 1 << 16;
    api_ = std::make_unique<ApiServer>(*test::serve_test_model().tokenizer, chat_, sched_, o);
    port_ = api_->bind();
    thread_ = std::thread([this] { api_->serve(); });
  }
  ~Served() {
    api_->stop();
    thread_.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    c.set_connection_timeout(5, 0);
    return c;
  }
  Scheduler& scheduler() { return sched_; }
  int port() const { return port_; }
  // Requests active or queued in the scheduler.
  bool busy() {
    const SchedulerStats st = sched_.stats();
    return st.active + st.queued > 0;
  }
  // Waits (at most 5 s) until nothing is active or queued.
  void wait_idle() {
    for (int i = 0; i < 1000 && busy(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

 private:
  ChatSetup chat_;
  Scheduler sched_;
  std::unique_ptr<ApiServer> api_;
  int port_ = 0;
  std::thread thread_;
};

std::string greedy_text(const std::string& prompt, int64_t n) {
  const Tokenizer& tok = *test::serve_test_model().tokenizer;
  const std::vector<int32_t> ids = test::greedy_reference(tok.encode(prompt, true), n);
  StreamDecoder d(tok, true);
  std::string s;
  for (int32_t id : ids) s += d.push(id);
  return s + d.flush();
}

json post(httplib::Client& c, const std::string& path, const json& body, int* status = nullptr) {
  auto r = c.Post(path, body.dump(), "application/json");
  EXPECT_TRUE(r) << path;
  if (!r) return json();
  if (status) *status = r->status;
  return json::parse(r->body, nullptr, false);
}

// The data: payloads of an SSE body, in order ("[DONE]" included).
std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    const size_t end = body.find("\n\n", pos);
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return out;
}

TEST(HttpServer, HealthModelsMetricsAndUnknownRoutes) {
  Served s;
  auto c = s.client();
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");
  auto m = c.Get("/v1/models");
  ASSERT_TRUE(m);
  EXPECT_EQ(json::parse(m->body)["data"][0]["id"], "ref-s-int4");
  auto x = c.Get("/v1/nothing");
  ASSERT_TRUE(x);
  EXPECT_EQ(x->status, 404);
  EXPECT_EQ(json::parse(x->body)["error"]["code"], 404);
  auto mt = c.Get("/metrics");
  ASSERT_TRUE(mt);
  EXPECT_NE(mt->body.find("# TYPE lowbit_requests_total counter"), std::string::npos);
  EXPECT_NE(mt->body.find("lowbit_kv_cache_bytes "), std::string::npos);
}

TEST(HttpServer, GreedyCompletionEqualsGenerate) {
  Served s;
  auto c = s.client();
  int status = 0;
  const json r = post(c, "/v1/completions", {{"prompt", "The history of the city"}, {"max_tokens", 20}, {"temperature", 0}}, &status);
  ASSERT_EQ(status, 200) << r.dump();
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_EQ(r["model"], "ref-s-int4");
  EXPECT_EQ(r["choices"][0]["text"], greedy_text("The history of the city", 20));
  EXPECT_EQ(r["usage"]["completion_tokens"], 20);
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
}

TEST(HttpServer, StreamCarriesTheSameTextAndEndsWithDone) {
  Served s;
  auto c = s.client();
  const json body = {{"prompt", "Once upon a time"}, {"max_tokens", 16}, {"temperature", 0}, {"stream", true},
                     {"stream_options", {{"include_usage", true}}}};
  auto r = c.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  const std::vector<std::string> ev = sse_events(r->body);
  ASSERT_GE(ev.size(), 3u);
  EXPECT_EQ(ev.back(), "[DONE]");
  std::string text;
  std::string finish;
  for (size_t i = 0; i + 1 < ev.size(); ++i) {
    const json j = json::parse(ev[i]);
    if (j["choices"].empty()) {
      EXPECT_EQ(j["usage"]["completion_tokens"], 16);  // the usage chunk
      continue;
    }
    text += j["choices"][0]["text"].get<std::string>();
    if (!j["choices"][0]["finish_reason"].is_null()) finish = j["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, greedy_text("Once upon a time", 16));
  EXPECT_EQ(finish, "length");
}

TEST(HttpServer, StopSequenceEndsTheReplyBeforeIt) {
  Served s;
  auto c = s.client();
  const std::string full = greedy_text("The history of the city", 24);
  ASSERT_GT(full.size(), 12u);
  const std::string stop = full.substr(8, 3);  // something the greedy reply is known to contain
  const json r = post(c, "/v1/completions", {{"prompt", "The history of the city"}, {"max_tokens", 24}, {"temperature", 0}, {"stop", stop}});
  EXPECT_EQ(r["choices"][0]["text"], full.substr(0, full.find(stop)));
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  // Streamed with logprobs: one logprob per counted token, none for tokens past the stop string.
  auto st = c.Post("/v1/completions",
                   json({{"prompt", "The history of the city"}, {"max_tokens", 24}, {"temperature", 0}, {"stop", stop},
                         {"stream", true}, {"logprobs", 1}, {"stream_options", {{"include_usage", true}}}})
                       .dump(),
                   "application/json");
  ASSERT_TRUE(st);
  std::string text;
  size_t logprobs = 0;
  int64_t counted = -1;
  for (const std::string& ev : sse_events(st->body)) {
    if (ev == "[DONE]") continue;
    const json j = json::parse(ev);
    if (j.contains("usage")) counted = j["usage"]["completion_tokens"];
    if (j["choices"].empty()) continue;
    text += j["choices"][0]["text"].get<std::string>();
    if (!j["choices"][0]["logprobs"].is_null()) logprobs += j["choices"][0]["logprobs"]["tokens"].size();
  }
  EXPECT_EQ(text, full.substr(0, full.find(stop)));
  EXPECT_EQ(static_cast<int64_t>(logprobs), counted);
  EXPECT_EQ(counted, r["usage"]["completion_tokens"]);
}

TEST(HttpServer, ChatUsesTheTemplateAndStreamsDeltas) {
  Served s;
  auto c = s.client();
  const json msgs = json::array({{{"role", "user"}, {"content", "Hello"}}});
  int status = 0;
  const json r = post(c, "/v1/chat/completions", {{"messages", msgs}, {"max_tokens", 8}, {"temperature", 0}}, &status);
  ASSERT_EQ(status, 200) << r.dump();
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["choices"][0]["message"]["role"], "assistant");
  auto st = c.Post("/v1/chat/completions",
                   json({{"messages", msgs}, {"max_tokens", 8}, {"temperature", 0}, {"stream", true}}).dump(), "application/json");
  ASSERT_TRUE(st);
  const std::vector<std::string> ev = sse_events(st->body);
  ASSERT_GE(ev.size(), 3u);
  EXPECT_EQ(json::parse(ev[0])["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  for (size_t i = 0; i + 1 < ev.size(); ++i) {
    const json d = json::parse(ev[i])["choices"][0]["delta"];
    if (d.contains("content")) text += d["content"].get<std::string>();
  }
  EXPECT_EQ(text, r["choices"][0]["message"]["content"]);
}

// n choices: each its own request, choice i sampled with seed + i, so it equals the one-choice
// reply of that seed; usage counts the prompt once and every choice's tokens.
TEST(HttpServer, NChoicesEachEqualTheOneChoiceReplyOfTheirSeed) {
  SchedulerOptions so;
  so.parallel = 2;
  so.max_queue = 4;
  Served s(so);
  auto c = s.client();
  const json base = {{"prompt", "The history of the city"}, {"max_tokens", 12}, {"temperature", 1.0}, {"ignore_eos", true}};
  int status = 0;
  json many = base;
  many["n"] = 3;
  many["seed"] = 42;
  const json r = post(c, "/v1/completions", many, &status);
  ASSERT_EQ(status, 200) << r.dump();
  ASSERT_EQ(r["choices"].size(), 3u);
  int64_t prompt_tokens = -1;
  std::set<std::string> distinct;
  for (int i = 0; i < 3; ++i) {
    json one = base;
    one["seed"] = 42 + i;
    const json single = post(c, "/v1/completions", one, &status);
    ASSERT_EQ(status, 200) << single.dump();
    EXPECT_EQ(r["choices"][i]["index"], i);
    EXPECT_EQ(r["choices"][i]["text"], single["choices"][0]["text"]) << "choice " << i;
    EXPECT_EQ(r["choices"][i]["finish_reason"], "length");
    prompt_tokens = single["usage"]["prompt_tokens"];
    distinct.insert(r["choices"][i]["text"].get<std::string>());
  }
  EXPECT_GT(distinct.size(), 1u);  // sampled at temperature 1 with different seeds
  EXPECT_EQ(r["usage"]["prompt_tokens"], prompt_tokens);
  EXPECT_EQ(r["usage"]["completion_tokens"], 36);
}

// Streamed chat with n = 2, greedy: every chunk names its choice, each choice gets its role
// chunk, its whole greedy text and one finish_reason; one usage chunk and one [DONE] end it.
TEST(HttpServer, NChoicesStreamInterleavedByIndex) {
  SchedulerOptions so;
  so.parallel = 2;
  Served s(so);
  auto c = s.client();
  const json msgs = json::array({{{"role", "user"}, {"content", "Hello"}}});
  int status = 0;
  const json whole = post(c, "/v1/chat/completions", {{"messages", msgs}, {"max_tokens", 10}, {"temperature", 0}}, &status);
  ASSERT_EQ(status, 200) << whole.dump();
  auto st = c.Post("/v1/chat/completions",
                   json({{"messages", msgs}, {"max_tokens", 10}, {"temperature", 0}, {"n", 2}, {"stream", true},
                         {"stream_options", {{"include_usage", true}}}}).dump(),
                   "application/json");
  ASSERT_TRUE(st);
  ASSERT_EQ(st->status, 200);
  const std::vector<std::string> ev = sse_events(st->body);
  ASSERT_GE(ev.size(), 4u);
  EXPECT_EQ(ev.back(), "[DONE]");
  std::string text[2];
  int roles[2] = {0, 0}, finishes[2] = {0, 0}, usage_chunks = 0;
  for (size_t i = 0; i + 1 < ev.size(); ++i) {
    const json j = json::parse(ev[i]);
    if (j["choices"].empty()) {
      ++usage_chunks;
      EXPECT_EQ(j["usage"]["completion_tokens"], 2 * whole["usage"]["completion_tokens"].get<int64_t>());
      continue;
    }
    ASSERT_EQ(j["choices"].size(), 1u);
    const int k = j["choices"][0]["index"];
    ASSERT_TRUE(k == 0 || k == 1) << ev[i];
    const json d = j["choices"][0]["delta"];
    if (d.contains("role")) ++roles[k];
    if (d.contains("content")) text[k] += d["content"].get<std::string>();
    if (!j["choices"][0]["finish_reason"].is_null()) ++finishes[k];
  }
  EXPECT_EQ(usage_chunks, 1);
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(roles[k], 1) << k;
    EXPECT_EQ(finishes[k], 1) << k;
    EXPECT_EQ(text[k], whole["choices"][0]["message"]["content"]) << k;
  }
}

// A request whose n choices do not all fit the slots and the queue is refused whole: 503, and
// the choices admitted before the refusal leave again.
TEST(HttpServer, NChoicesBeyondTheQueueAreRefusedWhole) {
  SchedulerOptions so;
  so.parallel = 1;
  so.max_queue = 1;
  Served s(so);
  auto c = s.client();
  int status = 0;
  const json r = post(c, "/v1/completions", {{"prompt", "Once"}, {"max_tokens", 200}, {"ignore_eos", true}, {"n", 3}}, &status);
  EXPECT_EQ(status, 503) << r.dump();
  s.wait_idle();
  EXPECT_FALSE(s.busy());
  EXPECT_LT(s.scheduler().stats().generated_tokens_total, 200);
  const json ok = post(c, "/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}, {"n", 2}}, &status);
  EXPECT_EQ(status, 200) << ok.dump();
  EXPECT_EQ(ok["choices"].size(), 2u);
}

TEST(HttpServer, BadRequestsGetOpenAiErrors) {
  Served s(SchedulerOptions{}, "sekret");
  auto c = s.client();
  auto no_key = c.Post("/v1/completions", R"({"prompt":"x"})", "application/json");
  ASSERT_TRUE(no_key);
  EXPECT_EQ(no_key->status, 401);
  EXPECT_EQ(json::parse(no_key->body)["error"]["type"], "authentication_error");
  EXPECT_EQ(c.Get("/health")->status, 200);  // health needs no key
  c.set_bearer_token_auth("sekret");
  auto bad = c.Post("/v1/completions", "{not json", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(json::parse(bad->body)["error"]["message"].get<std::string>().find("not valid JSON"), std::string::npos);
  // A chunked body (no Content-Length) is read up to the same limit as any other.
  auto chunked = c.Post("/v1/completions",
                        [](size_t offset, httplib::DataSink& sink) {
                          if (offset == 0) sink.write("{\"prompt\":\"x\",\"max_tokens\":2}", 29);
                          sink.done();
                          return true;
                        },
                        "application/json");
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->status, 200);
  auto huge = c.Post("/v1/completions",
                     [](size_t offset, httplib::DataSink& sink) {
                       const std::string piece(4096, ' ');
                       if (offset < (1u << 18)) sink.write(piece.data(), piece.size());
                       else sink.done();
                       return true;
                     },
                     "application/json");
  EXPECT_TRUE(!huge || huge->status == 413);  // refused (the server may close before the client ends)
  EXPECT_EQ(s.client().Get("/health")->status, 200);
  auto big = c.Post("/v1/completions", std::string(1 << 17, ' '), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  int status = 0;
  const json no_adapter = post(c, "/v1/completions", {{"prompt", "x"}, {"lora", {{{"id", 0}}}}}, &status);
  EXPECT_EQ(status, 400);
  EXPECT_NE(no_adapter["error"]["message"].get<std::string>().find("/lora-adapters"), std::string::npos);
  EXPECT_EQ(json::parse(c.Get("/lora-adapters")->body), json::array());
  std::string long_prompt;
  for (int i = 0; i < 2000; ++i) long_prompt += "word ";
  const json e = post(c, "/v1/completions", {{"prompt", long_prompt}}, &status);
  EXPECT_EQ(status, 400);
  EXPECT_NE(e["error"]["message"].get<std::string>().find("context"), std::string::npos);
}

TEST(HttpServer, FullQueueAnswers503AndDisconnectFreesTheSlot) {
  SchedulerOptions so;
  so.parallel = 1;
  so.max_queue = 0;
  Served s(so);
  std::atomic<int> chunks{0};
  std::thread streamer([&] {
    auto c = s.client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    // Long enough that the cancelled stream ends well short of it: the server notices the hang-up
    // when a write fails, after the socket buffers fill (~160 tokens of this fast model here).
    req.body = json({{"prompt", "Once"}, {"max_tokens", 500}, {"stream", true}, {"temperature", 0}}).dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 3; };  // hang up
    c.send(req);
  });
  for (int i = 0; i < 400 && chunks.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  ASSERT_GT(chunks.load(), 0);
  auto c = s.client();
  int status = 0;
  const json busy = post(c, "/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}}, &status);
  if (s.scheduler().stats().active == 1) {  // the streamer still holds the only slot
    EXPECT_EQ(status, 503);
    EXPECT_EQ(busy["error"]["code"], 503);
  }
  streamer.join();
  for (int i = 0; i < 400 && s.scheduler().stats().active > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  EXPECT_EQ(s.scheduler().stats().active, 0);  // the hung-up stream was cancelled
  EXPECT_LT(s.scheduler().stats().generated_tokens_total, 450);
  const json ok = post(c, "/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}}, &status);
  EXPECT_EQ(status, 200);
}

// A client that sends a non-streamed request and hangs up before the reply: the server notices
// without writing (serve/peer_socket.h) and cancels the generation instead of running it to
// max_tokens (ignore_eos: without the cancel it would generate all of them).
TEST(HttpServer, NonStreamedRequestOfAClientThatHungUpIsCancelled) {
  SchedulerOptions so;
  so.parallel = 1;
  Served s(so);
  const int64_t max_tokens = 250;
  const std::string body =
      json({{"prompt", "Once"}, {"max_tokens", max_tokens}, {"ignore_eos", true}, {"temperature", 0}}).dump();
  const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(s.port()));
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  close(fd);
  for (int i = 0; i < 400 && s.scheduler().stats().requests_total == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  s.wait_idle();
  const SchedulerStats st = s.scheduler().stats();
  EXPECT_EQ(st.requests_total, 1);
  EXPECT_EQ(st.active + st.queued, 0);
  std::printf("tokens generated for the client that hung up: %lld of %lld\n",
              static_cast<long long>(st.generated_tokens_total), static_cast<long long>(max_tokens));
  EXPECT_LT(st.generated_tokens_total, max_tokens);
}

TEST(HttpServer, ConcurrentGreedyRequestsAllEqualGenerate) {
  SchedulerOptions so;
  so.parallel = 4;
  so.max_queue = 16;
  Served s(so);
  const std::vector<std::string> prompts = {"The city", "Once upon", "In 1923 the", "Scientists", "The first", "A"};
  std::vector<std::string> got(12);
  std::vector<std::thread> ts;
  for (size_t i = 0; i < got.size(); ++i)
    ts.emplace_back([&, i] {
      auto c = s.client();
      const json r = post(c, "/v1/completions", {{"prompt", prompts[i % prompts.size()]}, {"max_tokens", 10}, {"temperature", 0}});
      if (r.contains("choices")) got[i] = r["choices"][0]["text"];
    });
  for (auto& t : ts) t.join();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], greedy_text(prompts[i % prompts.size()], 10)) << i;
}

}  // namespace
}  // namespace lowbit
