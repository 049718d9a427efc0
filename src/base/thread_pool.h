// ThreadPool: a fixed set of worker threads that, together with the calling thread, run the
// chunks of one job at a time. Built for a machine that may be busy with other processes:
//
// - Chunks are claimed one at a time from a shared ticket, and the caller claims too. A worker
//   that the OS has descheduled (or that never woke up) delays a job by at most the one chunk it
//   is running; everything it did not claim is run by whoever is on a CPU. No barrier waits for
//   every thread to arrive.
// - Waiting threads (idle workers, a caller whose last chunks run elsewhere) spin for at most
//   `spin_us` microseconds and then sleep on a futex, so they give the CPU back to the threads
//   doing work, ours or another process's, instead of burning their time slice.
//
// Contract of run(): for 0 < chunks <= kMaxChunks, body(c) is called exactly once for each c in
// [0, chunks), possibly concurrently, and run returns after the last call has returned. body must
// not throw. run is not reentrant: a call from inside a running body (any thread), or while another thread's job
// holds the pool, runs all chunks on the calling thread, in order.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace lowbit {

class ThreadPool {
 public:
  // A non-owning reference to a callable taking the chunk index (no allocation per job).
  struct ChunkFn {
    void (*call)(const void* ctx, int64_t chunk);
    const void* ctx;
  };

  // threads >= 1 counts the caller: threads - 1 workers are started.
  explicit ThreadPool(int threads, int spin_us = kDefaultSpinMicros);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  // True on a worker thread of any pool, and on a caller while its job runs: run() from here
  // runs the chunks serially in this thread.
  static bool inside_job();
  void run(int64_t chunks, ChunkFn body);

  template <class F>
  void run(int64_t chunks, const F& f) {
    run(chunks, ChunkFn{[](const void* ctx, int64_t c) { (*static_cast<const F*>(ctx))(c); }, &f});
  }

  static constexpr int64_t kMaxChunks = 0xFFFF;  // the ticket's 16-bit chunk fields
  // Longer than the gap between two parallel loops of a decode step, short enough that a
  // descheduled thread's share of the CPU goes to the threads with work (50 us measured best for
  // ref-m decode beside a CPU-bound process among 20-1000 us, with no loss on a quiet machine).
  static constexpr int kDefaultSpinMicros = 50;

 private:
  void worker_loop();
  // Claims and runs chunks of the job with this epoch until none is left; returns how many ran.
  int64_t work_on(uint32_t epoch);
  void wait_until_done(uint32_t chunks);

  std::vector<std::thread> workers_;
  const int spin_us_;
  std::mutex job_mutex_;  // one job at a time; try_lock failure = run serially

  // ticket_ = epoch << 32 | next unclaimed chunk. The epoch in the same word as the index makes a
  // claim on a finished job fail even if the pool has moved on to another one.
  std::atomic<uint64_t> ticket_{0};
  // The job's body: written by the caller only while no claim can succeed (see run()).
  ChunkFn body_{};
  std::atomic<uint32_t> done_{0};           // chunks finished in the current job (futex word)
  std::atomic<uint32_t> epoch_{0};          // bumped once per job; idle workers sleep on it
  std::atomic<int> sleeping_workers_{0};
  std::atomic<int> caller_sleeping_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace lowbit
