// Continuous batching: one thread runs the model for every active request at once.
//
// Each step the scheduler (1) admits queued requests while fewer than `parallel` are active and
// the KV budget can promise their blocks (serve/kv_pool.h: paged caches that grow as they fill,
// with prompt-prefix blocks shared between requests),
// (2) drops requests whose consumer cancelled, (3) builds one batch: one token per decoding
// request plus prefill chunks of new prompts (at most `prefill_chunk` prompt tokens per step, so a
// long prompt never stalls the streams already decoding), (4) runs LlamaModel::forward_batch and
// (5) samples the next token of every request whose prompt is complete, handing it to the
// request's consumer. Requests finish on EOS, at max_tokens, at the context, on cancel() or when
// the server drains.
//
// Greedy tokens equal lowbit generate's for the same prompt whatever the batch holds, as long as
// the model's linear layers are row-independent (see LlamaModel::forward_batch).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "model/llama.h"
#include "model/sampler.h"
#include "serve/kv_pool.h"

namespace lowbit {

struct GenRequest {
  std::vector<int32_t> prompt;  // non-empty token ids
  int64_t max_tokens = 16;      // new tokens at most (the context may stop it earlier)
  SamplerParams sampler;
  std::vector<int32_t> stop_ids;  // end-of-sequence/turn ids: generation ends when one is sampled
  int top_logprobs = -1;        // -1: no log-probabilities; else also the n most likely tokens
  std::vector<AdapterUse> adapters;  // switchable LoRA adapters of the model to run with
};

// One generated token as the consumer sees it.
struct TokenEvent {
  int32_t id = 0;
  float logprob = 0;                              // log p(id) under the model (temperature 1)
  std::vector<std::pair<int32_t, float>> top;     // the top_logprobs most likely (id, logprob)
};

enum class FinishReason { None, Eos, Length, Context, Cancelled, Drained, Error };
const char* finish_reason_name(FinishReason r);  // "stop", "length", ...

// The link between one request's consumer (an HTTP handler thread) and the scheduler.
class RequestHandle {
 public:
  // Moves the tokens generated since the last call into `out` (appending), waiting up to
  // `timeout` for at least one or for the end. Returns false once the request has finished and
  // every token has been taken.
  bool next(std::vector<TokenEvent>& out, std::chrono::milliseconds timeout);
  // The consumer is gone or has what it needs (a stop sequence): the scheduler frees the
  // request's slot at its next step. Idempotent.
  void cancel();
  bool cancelled() const { return cancelled_.load(); }
  FinishReason finish_reason() const;
  std::string error() const;  // set when finish_reason() is Error
  int64_t prompt_tokens() const { return prompt_tokens_; }

 private:
  friend class Scheduler;
  void push(TokenEvent e);
  void finish(FinishReason r, std::string error = {});

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<TokenEvent> pending_;
  FinishReason finish_ = FinishReason::None;
  std::string error_;
  std::atomic<bool> cancelled_{false};
  int64_t prompt_tokens_ = 0;
};

struct SchedulerOptions {
  int parallel = 4;              // requests decoded together
  int max_queue = 64;            // waiting requests beyond the active ones; more are refused
  int64_t prefill_chunk = 256;   // prompt tokens per step, over all prefilling requests
  int64_t ctx = 0;               // tokens per request (prompt + generated); 0: the model's
  KvType kv_type = KvType::F32;  // how the KV cache stores keys and values (model/kv_cache.h)
  int64_t kv_block = 16;         // positions per KV block
  int64_t kv_budget = 0;         // KV positions for all requests together; 0: parallel · ctx
};

// Counters for /metrics; totals are since start.
struct SchedulerStats {
  int active = 0, queued = 0;
  int64_t requests_total = 0, rejected_total = 0;
  int64_t prompt_tokens_total = 0, generated_tokens_total = 0, steps_total = 0;
  int64_t kv_tokens = 0;           // KV positions in blocks alive (requests and prefix cache)
  int64_t kv_tokens_peak = 0;      // the most KV positions ever alive at once
  int64_t kv_bytes = 0, kv_budget_bytes = 0;
  int64_t prefix_blocks = 0;       // prompt-prefix blocks kept for reuse
  int64_t prefix_reused_tokens_total = 0;  // prompt positions not prefilled thanks to them
  double busy_seconds = 0;         // time spent in forward passes and sampling
};

class Scheduler {
 public:
  // Starts the scheduling thread. Throws lowbit::Error("serve", ...) for parallel < 1,
  // max_queue < 0, prefill_chunk < 1, a ctx outside [1, the model's context], kv_block < 1 or a
  // kv_budget smaller than ctx.
  Scheduler(const LlamaModel& model, SchedulerOptions opt);
  ~Scheduler();  // cancels what is left and joins the thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request; nullptr when the queue is full or the scheduler is draining (the caller
  // answers 503). Throws lowbit::Error("serve", ...) for an empty prompt, a prompt that fills the
  // context, max_tokens < 1 or bad sampler settings.
  std::shared_ptr<RequestHandle> submit(GenRequest r);
  // Stops admitting new requests; those queued or active run to their end. wait_idle() then
  // returns once none is left, or after `timeout`, when the rest are cancelled (reason Drained).
  void drain();
  bool wait_idle(std::chrono::milliseconds timeout);

  SchedulerStats stats() const;
  int64_t ctx() const { return ctx_; }
  const SchedulerOptions& options() const { return opt_; }

 private:
  struct Active;
  void run();
  void admit();
  void step(std::vector<std::unique_ptr<Active>>& active);
  void sample_into(Active& a, const float* logits);
  void retire(std::vector<std::unique_ptr<Active>>& active);

  const LlamaModel& model_;
  SchedulerOptions opt_;
  int64_t ctx_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::pair<GenRequest, std::shared_ptr<RequestHandle>>> queue_;
  std::unique_ptr<KvBlockPool> pool_;            // touched by the scheduling thread only
  std::vector<std::unique_ptr<Active>> active_;  // touched by the scheduling thread only
  bool stopping_ = false, draining_ = false, cancel_all_ = false;
  SchedulerStats stats_;
  std::thread thread_;
};

}  // namespace lowbit
