#include "base/parallel.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "base/thread_pool.h"

extern "C" void openblas_set_num_threads(int);

namespace lowbit {

namespace {

// Chunks per thread: enough that a descheduled thread's share is taken over by the others (the
// pool hands chunks out one at a time), few enough that per-chunk set-up stays negligible.
constexpr int64_t kChunksPerThread = 4;

int g_threads = 0;
std::mutex g_pool_mutex;  // guards the pool's replacement (not its use: the pool serializes jobs)
// Never destroyed: workers may still be spinning on it while the process exits, and a join at exit
// could wait on a job another thread is running.
auto* const g_pool = new std::shared_ptr<ThreadPool>;
std::atomic<uint64_t> g_pool_generation{0};  // bumped (under the mutex) whenever *g_pool changes

// The pool with `threads` threads. Each calling thread keeps its own reference and refreshes it
// only when the generation moved, so the usual call takes neither the mutex nor a reference count.
ThreadPool& pool_for(int threads) {
  thread_local std::shared_ptr<ThreadPool> mine;
  thread_local uint64_t my_generation = ~uint64_t{0};
  if (mine && mine->threads() == threads && my_generation == g_pool_generation.load(std::memory_order_acquire))
    return *mine;
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!*g_pool || (*g_pool)->threads() != threads) {
    *g_pool = std::make_shared<ThreadPool>(threads);
    g_pool_generation.fetch_add(1, std::memory_order_release);
  }
  mine = *g_pool;
  my_generation = g_pool_generation.load(std::memory_order_relaxed);
  return *mine;
}

}  // namespace

void set_num_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  g_threads = n;
  // OpenBLAS runs single-threaded inside our parallel_for slices: two thread pools spinning
  // against each other on the same cores cost more than they give.
  openblas_set_num_threads(1);
}

int num_threads() {
  if (g_threads == 0) set_num_threads(0);
  return g_threads;
}

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t t = std::min<int64_t>(num_threads(), n);
  if (t == 1) {
    fn(0, n);
    return;
  }
  // Chunk boundaries depend only on n and the thread count, never on which thread runs a chunk.
  const int64_t chunks = std::min({n, t * kChunksPerThread, ThreadPool::kMaxChunks});
  auto chunk = [&](int64_t c) { fn(n * c / chunks, n * (c + 1) / chunks); };
  // Nested calls run serially, as run() would run them, without pool_for: a worker that kept a
  // reference to its own pool would keep that pool alive forever.
  if (ThreadPool::inside_job()) {
    for (int64_t c = 0; c < chunks; ++c) chunk(c);
    return;
  }
  pool_for(num_threads()).run(chunks, chunk);
}

}  // namespace lowbit
