#include "base/thread_pool.h"

#include <immintrin.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <climits>

#include "base/error.h"

namespace lowbit {

namespace {

thread_local bool t_inside_job = false;  // workers always; a caller while its job runs

// Ticket layout: epoch (32 bits) | chunks (16 bits) | next unclaimed chunk (16 bits).
constexpr uint64_t kIndexMask = 0xFFFF;
uint64_t make_ticket(uint32_t epoch, uint32_t chunks) {
  return uint64_t{epoch} << 32 | uint64_t{chunks} << 16;
}
uint32_t ticket_epoch(uint64_t t) { return static_cast<uint32_t>(t >> 32); }
uint32_t ticket_chunks(uint64_t t) { return static_cast<uint32_t>(t >> 16 & kIndexMask); }
uint32_t ticket_next(uint64_t t) { return static_cast<uint32_t>(t & kIndexMask); }

void futex_wait(std::atomic<uint32_t>* word, uint32_t expected) {
  // Returns at once if *word != expected (no lost wake-up); spurious returns are re-checked.
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
            nullptr, 0);
}
void futex_wake(std::atomic<uint32_t>* word, int count) {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr,
            nullptr, 0);
}

// Spins (with pause) while `still_waiting()` holds, for at most `spin_us`; true if the wait ended
// while spinning.
template <class Pred>
bool spin_while(Pred still_waiting, int spin_us) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::microseconds(spin_us);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (!still_waiting()) return true;
      _mm_pause();
    }
    if (Clock::now() >= deadline) return !still_waiting();
  }
}

}  // namespace

ThreadPool::ThreadPool(int threads, int spin_us) : spin_us_(spin_us) {
  LOWBIT_ASSERT(threads >= 1 && spin_us >= 0);
  workers_.reserve(static_cast<size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  std::lock_guard<std::mutex> lock(job_mutex_);
  stop_.store(true, std::memory_order_seq_cst);
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(&epoch_, INT_MAX);
  for (std::thread& w : workers_) w.join();
}

void ThreadPool::worker_loop() {
  t_inside_job = true;  // a body that calls parallel_for from a worker runs it serially
  // The epoch at construction, not at start-up: a worker that starts late (after jobs, or after
  // the destructor's bump) must still see every bump that happened since.
  uint32_t seen = 0;
  for (;;) {
    const auto idle = [&] { return epoch_.load(std::memory_order_acquire) == seen; };
    if (!spin_while(idle, spin_us_)) {
      sleeping_workers_.fetch_add(1, std::memory_order_seq_cst);
      while (epoch_.load(std::memory_order_seq_cst) == seen) futex_wait(&epoch_, seen);
      sleeping_workers_.fetch_sub(1, std::memory_order_seq_cst);
    }
    // stop_ is set before the destructor's epoch bump: read the epoch first, then stop_.
    seen = epoch_.load(std::memory_order_seq_cst);
    if (stop_.load(std::memory_order_seq_cst)) return;
    work_on(seen);
  }
}

int64_t ThreadPool::work_on(uint32_t epoch) {
  int64_t ran = 0;
  uint64_t t = ticket_.load(std::memory_order_acquire);
  for (;;) {
    // A stale epoch or an exhausted job: nothing to claim. A successful compare-exchange proves
    // the job is live (its chunk is not done yet), so body_ is its own until then.
    if (ticket_epoch(t) != epoch || ticket_next(t) >= ticket_chunks(t)) return ran;
    if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel,
                                       std::memory_order_acquire))
      continue;
    body_.call(body_.ctx, static_cast<int64_t>(ticket_next(t)));
    ++ran;
    const uint32_t done = done_.fetch_add(1, std::memory_order_seq_cst) + 1;
    if (done == ticket_chunks(t) && caller_sleeping_.load(std::memory_order_seq_cst) != 0)
      futex_wake(&done_, 1);
    t = ticket_.load(std::memory_order_acquire);
  }
}

void ThreadPool::wait_until_done(uint32_t chunks) {
  const auto pending = [&] { return done_.load(std::memory_order_acquire) != chunks; };
  if (spin_while(pending, spin_us_)) return;
  caller_sleeping_.store(1, std::memory_order_seq_cst);
  for (uint32_t d; (d = done_.load(std::memory_order_seq_cst)) != chunks;) futex_wait(&done_, d);
  caller_sleeping_.store(0, std::memory_order_relaxed);
}

bool ThreadPool::inside_job() { return t_inside_job; }

void ThreadPool::run(int64_t chunks, ChunkFn body) {
  if (chunks <= 0) return;
  LOWBIT_ASSERT(chunks <= kMaxChunks);
  const bool serial = chunks == 1 || workers_.empty() || t_inside_job;
  std::unique_lock<std::mutex> lock(job_mutex_, std::defer_lock);
  if (serial || !lock.try_lock()) {
    for (int64_t c = 0; c < chunks; ++c) body.call(body.ctx, c);
    return;
  }
  t_inside_job = true;
  // The previous job is complete (done_ reached its chunk count), so no claim on it can succeed
  // any more and the job fields may be rewritten before the new ticket publishes them.
  const uint32_t epoch = epoch_.load(std::memory_order_relaxed) + 1;
  const auto n = static_cast<uint32_t>(chunks);
  body_ = body;
  done_.store(0, std::memory_order_relaxed);
  ticket_.store(make_ticket(epoch, n), std::memory_order_release);
  epoch_.store(epoch, std::memory_order_seq_cst);
  if (sleeping_workers_.load(std::memory_order_seq_cst) > 0) futex_wake(&epoch_, INT_MAX);
  work_on(epoch);
  wait_until_done(n);
  t_inside_job = false;
}

}  // namespace lowbit
