#include "serve/scheduler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.h"

namespace lowbit {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Eos: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Context: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Drained: return "cancelled";
    case FinishReason::Error: return "error";
    case FinishReason::None: break;
  }
  return "none";
}

// ---- RequestHandle ---------------------------------------------------------------------------

bool RequestHandle::next(std::vector<TokenEvent>& out, std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, timeout, [&] { return !pending_.empty() || finish_ != FinishReason::None; });
  for (TokenEvent& e : pending_) out.push_back(std::move(e));
  pending_.clear();
  return finish_ == FinishReason::None;
}

void RequestHandle::cancel() { cancelled_.store(true); }

FinishReason RequestHandle::finish_reason() const {
  std::lock_guard lk(mu_);
  return finish_;
}

std::string RequestHandle::error() const {
  std::lock_guard lk(mu_);
  return error_;
}

void RequestHandle::push(TokenEvent e) {
  {
    std::lock_guard lk(mu_);
    pending_.push_back(std::move(e));
  }
  cv_.notify_all();
}

void RequestHandle::finish(FinishReason r, std::string error) {
  {
    std::lock_guard lk(mu_);
    if (finish_ != FinishReason::None) return;
    finish_ = r;
    error_ = std::move(error);
  }
  cv_.notify_all();
}

// ---- Scheduler -------------------------------------------------------------------------------

struct Scheduler::Active {
  GenRequest req;
  std::shared_ptr<RequestHandle> handle;
  KvCache cache;
  std::optional<Sampler> sampler;
  std::vector<int32_t> history;  // prompt + generated, for the repeat penalty
  int64_t prefilled = 0;         // prompt tokens already in the cache
  int64_t generated = 0, limit = 0;  // limit: max_tokens clipped by the context
  int64_t reserved = 0;          // KV blocks promised by the pool, not yet taken
  int32_t last = -1;             // the token the next decode step feeds
  FinishReason done = FinishReason::None;
  std::string error;
};

Scheduler::Scheduler(const LlamaModel& model, SchedulerOptions opt) : model_(model), opt_(opt) {
  const int64_t model_ctx = model.config().max_seq_len;
  ctx_ = opt.ctx == 0 ? model_ctx : opt.ctx;
  if (opt.parallel < 1) throw Error("serve", "--parallel must be >= 1");
  if (opt.max_queue < 0) throw Error("serve", "--queue must be >= 0");
  if (opt.prefill_chunk < 1) throw Error("serve", "--prefill-chunk must be >= 1");
  if (ctx_ < 1 || ctx_ > model_ctx)
    throw Error("serve", "--ctx " + std::to_string(ctx_) + " is outside [1, " + std::to_string(model_ctx) +
                             "] (the model's context)");
  const int64_t budget = opt.kv_budget > 0 ? opt.kv_budget : opt.parallel * ctx_;
  if (budget < ctx_)
    throw Error("serve", "--kv-budget " + std::to_string(budget) + " is smaller than the context of one request (" +
                             std::to_string(ctx_) + ")");
  if (opt.kv_block < 1 || opt.kv_block > 4096) throw Error("serve", "--kv-block must be in [1, 4096]");
  pool_ = std::make_unique<KvBlockPool>(model, opt.kv_type, opt.kv_block, (budget + opt.kv_block - 1) / opt.kv_block);
  stats_.kv_budget_bytes = pool_->stats().max_blocks * pool_->stats().block_bytes;
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::shared_ptr<RequestHandle> Scheduler::submit(GenRequest r) {
  if (r.prompt.empty()) throw Error("serve", "the prompt is empty");
  if (static_cast<int64_t>(r.prompt.size()) >= ctx_)
    throw Error("serve", "the prompt has " + std::to_string(r.prompt.size()) +
                             " tokens; the context holds " + std::to_string(ctx_) +
                             " (prompt and reply together)");
  if (r.max_tokens < 1) throw Error("serve", "max_tokens must be >= 1");
  for (int32_t id : r.prompt)
    if (id < 0 || id >= model_.config().vocab_size)
      throw Error("serve", "token id " + std::to_string(id) + " is outside the vocabulary");
  validate_sampler_params(r.sampler);
  for (const AdapterUse& u : r.adapters)
    if (u.index < 0 || u.index >= model_.switchable_adapters() || !std::isfinite(u.scale))
      throw Error("serve", "LoRA adapter " + std::to_string(u.index) + " does not exist (the server has " +
                               std::to_string(model_.switchable_adapters()) + ") or its scale is not finite");
  auto h = std::make_shared<RequestHandle>();
  h->prompt_tokens_ = static_cast<int64_t>(r.prompt.size());
  {
    std::lock_guard lk(mu_);
    const int waiting = static_cast<int>(queue_.size()) + stats_.active - opt_.parallel;
    if (draining_ || stopping_ || waiting >= opt_.max_queue) {
      ++stats_.rejected_total;
      return nullptr;
    }
    ++stats_.requests_total;
    queue_.emplace_back(std::move(r), h);
    stats_.queued = static_cast<int>(queue_.size());
  }
  cv_.notify_all();
  return h;
}

void Scheduler::drain() {
  std::lock_guard lk(mu_);
  draining_ = true;
}

bool Scheduler::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  const bool idle = idle_cv_.wait_for(lk, timeout, [&] { return queue_.empty() && stats_.active == 0; });
  if (!idle) cancel_all_ = true;  // out of time: the thread cancels the rest at its next step
  lk.unlock();
  cv_.notify_all();
  return idle;
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

void Scheduler::run() {
  for (;;) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty() || !active_.empty(); });
      if (stopping_) break;
    }
    try {
      admit();
      retire(active_);
      if (!active_.empty()) step(active_);
    } catch (const std::exception& e) {  // out of memory: fail what is running, keep serving
      for (auto& a : active_)
        if (a->done == FinishReason::None) a->done = FinishReason::Error, a->error = e.what();
    }
    retire(active_);
  }
  for (auto& a : active_) a->handle->finish(FinishReason::Drained);
  std::lock_guard lk(mu_);
  for (auto& [req, h] : queue_) h->finish(FinishReason::Drained);
}

// Admits queued requests in order while there is a free slot and the pool can promise their KV
// blocks; the front request waits (put back) until blocks come back. After a drain timeout it
// finishes every queued request instead.
void Scheduler::admit() {
  while (static_cast<int>(active_.size()) < opt_.parallel) {
    std::pair<GenRequest, std::shared_ptr<RequestHandle>> item;
    {
      std::lock_guard lk(mu_);
      if (cancel_all_) {
        for (auto& [req, h] : queue_) h->finish(FinishReason::Drained);
        queue_.clear();
      }
      if (queue_.empty()) return;
      item = std::move(queue_.front());
      queue_.pop_front();
      stats_.active = static_cast<int>(active_.size()) + 1;  // wait_idle must not see it nowhere
    }
    auto& [req, handle] = item;
    if (handle->cancelled()) {  // the client left while it waited
      handle->finish(FinishReason::Cancelled);
      continue;
    }
    const int64_t limit = std::min(req.max_tokens, ctx_ - static_cast<int64_t>(req.prompt.size()));
    auto a = std::make_unique<Active>();
    a->cache = pool_->start_cache(req.prompt);
    a->reserved = pool_->blocks_for(static_cast<int64_t>(req.prompt.size()) + limit) -
                  static_cast<int64_t>(a->cache.blocks.size());
    if (!pool_->reserve(a->reserved)) {
      std::lock_guard lk(mu_);
      queue_.push_front(std::move(item));
      stats_.active = static_cast<int>(active_.size());
      return;
    }
    pool_->count_reused(a->cache.n_past);
    a->sampler.emplace(req.sampler);  // validated by submit()
    a->limit = limit;
    a->prefilled = a->cache.n_past;  // prompt positions taken from the prefix cache
    a->history = req.prompt;
    a->req = std::move(req);
    a->handle = std::move(handle);
    active_.push_back(std::move(a));
  }
}

void Scheduler::step(std::vector<std::unique_ptr<Active>>& active) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<BatchSequence> batch;
  std::vector<Active*> members;
  std::vector<bool> samples;  // whether the member's row is a next-token prediction
  int64_t budget = opt_.prefill_chunk, prompt_rows = 0;
  for (auto& a : active) {
    const int64_t n_prompt = static_cast<int64_t>(a->req.prompt.size());
    if (a->prefilled < n_prompt) {
      if (budget == 0) continue;
      const int64_t n = std::min(budget, n_prompt - a->prefilled);
      batch.push_back({std::span<const int32_t>(a->req.prompt).subspan(a->prefilled, n), &a->cache, false, a->req.adapters});
      samples.push_back(a->prefilled + n == n_prompt);
      budget -= n;
      prompt_rows += n;
    } else {
      batch.push_back({std::span<const int32_t>(&a->last, 1), &a->cache, false, a->req.adapters});
      samples.push_back(true);
    }
    members.push_back(a.get());
  }
  if (batch.empty()) return;
  for (size_t i = 0; i < members.size(); ++i) {  // blocks for this step's positions, from the promised ones
    KvCache& c = members[i]->cache;
    try {
      while (c.capacity() < c.n_past + static_cast<int64_t>(batch[i].tokens.size())) {
        pool_->grow(c);
        --members[i]->reserved;
      }
    } catch (const std::bad_alloc&) {  // the budget is larger than the machine's memory
      members[i]->done = FinishReason::Error;
      members[i]->error = "out of memory for the KV cache (lower --kv-budget or --parallel)";
      return;  // retire() drops it; the others run next step
    }
  }
  std::vector<float> logits;
  try {
    model_.forward_batch(batch, logits);
  } catch (const std::exception& e) {
    for (Active* a : members) a->done = FinishReason::Error, a->error = e.what();
    return;
  }
  const int64_t V = model_.config().vocab_size;
  int64_t sampled = 0;
  for (size_t i = 0; i < members.size(); ++i) {
    Active& a = *members[i];
    if (a.prefilled < static_cast<int64_t>(a.req.prompt.size())) {
      a.prefilled += static_cast<int64_t>(batch[i].tokens.size());
      if (a.prefilled == static_cast<int64_t>(a.req.prompt.size())) pool_->publish(a.cache, a.req.prompt);
    }
    if (!samples[i]) continue;
    sample_into(a, logits.data() + i * V);
    ++sampled;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::lock_guard lk(mu_);
  ++stats_.steps_total;
  stats_.prompt_tokens_total += prompt_rows;
  stats_.generated_tokens_total += sampled;
  stats_.busy_seconds += secs;
}

namespace {

// log-softmax of logits at `id`, and the n most likely (id, logprob), in double.
TokenEvent with_logprobs(int32_t id, const float* logits, int64_t V, int n_top) {
  TokenEvent e;
  e.id = id;
  const float mx = *std::max_element(logits, logits + V);
  double sum = 0;
  for (int64_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  const double log_z = mx + std::log(sum);
  e.logprob = static_cast<float>(logits[id] - log_z);
  std::vector<int32_t> ids(static_cast<size_t>(V));
  std::iota(ids.begin(), ids.end(), 0);
  const int64_t k = std::min<int64_t>(n_top, V);
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  for (int64_t i = 0; i < k; ++i) e.top.emplace_back(ids[i], static_cast<float>(logits[ids[i]] - log_z));
  return e;
}

}  // namespace

void Scheduler::sample_into(Active& a, const float* logits) {
  const int64_t V = model_.config().vocab_size;
  int32_t id;
  try {
    id = a.sampler->sample({logits, static_cast<size_t>(V)}, a.history);
  } catch (const std::exception& e) {  // non-finite logits
    a.done = FinishReason::Error;
    a.error = e.what();
    return;
  }
  a.history.push_back(id);
  a.last = id;
  ++a.generated;
  if (std::find(a.req.stop_ids.begin(), a.req.stop_ids.end(), id) != a.req.stop_ids.end()) {  // not part of the reply
    a.done = FinishReason::Eos;
    return;
  }
  if (a.req.top_logprobs >= 0) {
    a.handle->push(with_logprobs(id, logits, V, a.req.top_logprobs));
  } else {
    TokenEvent e;
    e.id = id;
    a.handle->push(std::move(e));
  }
  if (a.generated == a.limit) a.done = a.limit == a.req.max_tokens ? FinishReason::Length : FinishReason::Context;
}

void Scheduler::retire(std::vector<std::unique_ptr<Active>>& active) {
  bool cancel_all;
  {
    std::lock_guard lk(mu_);
    cancel_all = cancel_all_;
  }
  struct Finished {
    std::shared_ptr<RequestHandle> handle;
    FinishReason reason;
    std::string error;
  };
  std::vector<Finished> finished;
  for (auto it = active.begin(); it != active.end();) {
    Active& a = **it;
    if (a.done == FinishReason::None && a.handle->cancelled()) a.done = FinishReason::Cancelled;
    if (a.done == FinishReason::None && cancel_all) a.done = FinishReason::Drained;
    if (a.done != FinishReason::None) {
      pool_->release(a.reserved);
      finished.push_back({a.handle, a.done, a.error});
      it = active.erase(it);  // its blocks go back (unless published prefixes keep them)
    } else {
      ++it;
    }
  }
  // The counters change before any handle hears its finish, so a client that has its last
  // event never reads itself as still active in stats() or /metrics.
  bool idle;
  {
    std::lock_guard lk(mu_);
    stats_.active = static_cast<int>(active.size());
    stats_.queued = static_cast<int>(queue_.size());
    const KvPoolStats ps = pool_->stats();
    stats_.kv_tokens = ps.blocks_alive * pool_->block_rows();
    stats_.kv_tokens_peak = ps.blocks_alive_peak * pool_->block_rows();
    stats_.kv_bytes = ps.blocks_alive * ps.block_bytes;
    stats_.kv_budget_bytes = ps.max_blocks * ps.block_bytes;
    stats_.prefix_blocks = ps.blocks_cached;
    stats_.prefix_reused_tokens_total = ps.reused_tokens_total;
    idle = active.empty() && queue_.empty();
  }
  for (Finished& f : finished) f.handle->finish(f.reason, f.error);
  if (idle) idle_cv_.notify_all();
}

}  // namespace lowbit
