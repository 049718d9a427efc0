#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <atomic>
#include <chrono>
#include <thread>

#include "base/error.h"
#include "cli/commands.h"
#include "model/loader.h"
#include "serve/chat_prompt.h"
#include "serve/http_server.h"
#include "serve/scheduler.h"
#include "train/lora.h"

namespace lowbit::cli {

namespace {

struct ServeArgs {
  std::string model, tokenizer, chat_template, model_name, kv_type = "f32";
  LoraArgs lora;
  ServerOptions server;
  SchedulerOptions sched;
  double drain_timeout = 30;
  int threads = 0;
};

// SIGINT/SIGTERM may land on any thread (OpenBLAS starts its own before main), so the handler
// only writes the signal number to a pipe (async-signal-safe); a watcher thread reads it and
// runs the shutdown.
int g_signal_pipe[2] = {-1, -1};

extern "C" void on_shutdown_signal(int sig) {
  const unsigned char b = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t n = write(g_signal_pipe[1], &b, 1);
}

void install_shutdown_handler() {
  if (pipe(g_signal_pipe) != 0) throw Error("serve", "cannot create the signal pipe");
  struct sigaction sa {};
  sa.sa_handler = on_shutdown_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int wait_for_shutdown_signal() {
  unsigned char b = 0;
  while (read(g_signal_pipe[0], &b, 1) < 0 && errno == EINTR) {
  }
  return b;
}

void run_serve(ServeArgs& a) {
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up mid-stream is a failed write, not death
  apply_threads(a.threads);
  if (const char* key = std::getenv("LOWBIT_API_KEY"); key && a.server.api_key.empty()) a.server.api_key = key;
  LoadedModel m = load_model(a.model, a.tokenizer);
  // Adapters are switchable: every request runs with all of them unless its "lora" field says.
  const std::vector<LoraAdapter> adapters = load_lora_adapters(a.lora, m.model->config());
  for (size_t i = 0; i < adapters.size(); ++i) {
    m.model->add_switchable_adapter(adapters[i].deltas(a.lora.scale));
    a.server.adapters.push_back(a.lora.dirs[i]);
  }
  const ChatSetup chat = find_chat_setup(m.source, *m.tokenizer, a.chat_template);
  a.server.model_name = a.model_name.empty() ? a.model : a.model_name;
  a.sched.kv_type = parse_kv_type(a.kv_type);
  Scheduler sched(*m.model, a.sched);
  ApiServer api(*m.tokenizer, chat, sched, a.server);
  const int port = api.bind();
  std::fprintf(stderr, "lowbit serve: %s on http://%s:%d (%d parallel, queue %d, context %lld, KV %s in %.1f MiB, chat template: %s)\n",
               a.server.model_name.c_str(), a.server.host.c_str(), port, a.sched.parallel, a.sched.max_queue,
               static_cast<long long>(sched.ctx()), a.kv_type.c_str(), sched.stats().kv_budget_bytes / 1048576.0,
               chat.origin.c_str());
  install_shutdown_handler();
  std::atomic<bool> served{false};
  // Waits for SIGINT/SIGTERM (or a 0 byte: serve() ended by itself), drains, then stops the
  // server, retrying: a stop() that lands before listening began would be lost.
  std::thread watcher([&] {
    if (const int sig = wait_for_shutdown_signal(); sig != 0) {
      std::fprintf(stderr, "lowbit serve: %s, finishing the requests in progress (up to %.0f s)\n",
                   sig == SIGINT ? "interrupted" : "terminated", a.drain_timeout);
      api.begin_shutdown();
      sched.drain();
      const bool idle = sched.wait_idle(std::chrono::milliseconds(static_cast<int64_t>(a.drain_timeout * 1000)));
      if (!idle) std::fprintf(stderr, "lowbit serve: drain timeout, cancelled the rest\n");
    }
    while (!served.load()) {
      api.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  auto finish = [&] {
    served.store(true);
    const unsigned char zero = 0;  // wakes the watcher if no signal came
    [[maybe_unused]] const ssize_t n = write(g_signal_pipe[1], &zero, 1);
    watcher.join();
  };
  try {
    api.serve();
  } catch (...) {
    finish();
    throw;
  }
  finish();
  const SchedulerStats st = sched.stats();
  std::fprintf(stderr, "lowbit serve: stopped after %lld requests, %lld tokens generated\n",
               static_cast<long long>(st.requests_total), static_cast<long long>(st.generated_tokens_total));
}

}  // namespace

void add_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "serve a model over an OpenAI-compatible HTTP API (continuous batching, SSE streaming)");
  cmd->add_option("-m,--model", a->model, "HF directory, .gguf, llama2.c .bin or .lowbit")->required();
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer file (default: found with the model)");
  cmd->add_option("--host", a->server.host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", a->server.port, "TCP port (0: any free port)")->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--parallel", a->sched.parallel, "requests decoded together in one batch")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--queue", a->sched.max_queue, "requests that may wait for a slot; beyond it: 503")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_option("-c,--ctx", a->sched.ctx, "tokens per request, prompt and reply (default: the model's context)")->check(non_negative());
  cmd->add_option("--prefill-chunk", a->sched.prefill_chunk, "prompt tokens prefilled per batch step")->check(positive())->capture_default_str();
  cmd->add_option("--api-key", a->server.api_key, "require 'Authorization: Bearer KEY' on /v1 (or set LOWBIT_API_KEY)");
  cmd->add_option("--alias", a->model_name, "model name that /v1/models lists (default: the --model path)");
  cmd->add_option("--chat-template", a->chat_template, "file with a Jinja chat template (default: the model's)");
  cmd->add_option("--http-threads", a->server.http_threads, "HTTP worker threads (0: 2 x (parallel + queue) + 16, at most 1024)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--drain-timeout", a->drain_timeout, "seconds SIGTERM waits for requests in progress")->check(non_negative())->capture_default_str();
  add_lora_options(*cmd, &a->lora, "load a LoRA adapter (id 0, 1, ... in order); requests use all unless their \"lora\" field picks");
  add_kv_type_option(*cmd, &a->kv_type);
  cmd->add_option("--kv-block", a->sched.kv_block, "positions per KV cache block")->check(positive())->capture_default_str();
  cmd->add_option("--kv-budget", a->sched.kv_budget,
                  "KV positions for all requests together (default: parallel x ctx); requests wait for room")
      ->check(non_negative());
  add_threads_option(*cmd, &a->threads);
  cmd->callback([a] { run_serve(*a); });
}

}  // namespace lowbit::cli
