// ThreadPool and parallel_for: every chunk runs exactly once, nested and concurrent calls, a
// stalled thread does not hold the job's other chunks, and idle workers sleep instead of spinning.
#include "base/thread_pool.h"

#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "base/parallel.h"

namespace lowbit {
namespace {

// Runs `jobs` jobs of `chunks` chunks and checks that each chunk ran exactly once per job.
void expect_each_chunk_once(ThreadPool& pool, int64_t chunks, int jobs) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(chunks));
  for (int j = 0; j < jobs; ++j) pool.run(chunks, [&](int64_t c) { hits[c].fetch_add(1); });
  for (int64_t c = 0; c < chunks; ++c) ASSERT_EQ(hits[c].load(), jobs) << "chunk " << c;
}

TEST(ThreadPool, RunsEveryChunkExactlyOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.threads(), threads);
    for (int64_t chunks : {1, 2, 3, 7, 64, 1000}) expect_each_chunk_once(pool, chunks, 200);
    expect_each_chunk_once(pool, ThreadPool::kMaxChunks, 3);
    pool.run(0, [](int64_t) { FAIL() << "no chunk to run"; });
  }
}

TEST(ThreadPool, ManyShortJobsBackToBackAndAfterIdleSleep) {
  ThreadPool pool(3, /*spin_us=*/20);
  for (int round = 0; round < 3; ++round) {
    expect_each_chunk_once(pool, 12, 5000);  // jobs arrive while workers spin
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // workers go to sleep
  }
  ThreadPool no_spin(2, /*spin_us=*/0);  // every wait goes to the futex at once
  expect_each_chunk_once(no_spin, 8, 2000);
}

TEST(ThreadPool, NestedRunsSeriallyOnTheCallingThread) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(8 * 5);
  pool.run(8, [&](int64_t outer) {
    const auto me = std::this_thread::get_id();
    pool.run(5, [&](int64_t inner) {
      EXPECT_EQ(std::this_thread::get_id(), me);
      hits[outer * 5 + inner].fetch_add(1);
    });
  });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(ThreadPool, ConcurrentCallersAllComplete) {
  ThreadPool pool(2);
  std::vector<std::thread> callers;
  std::vector<std::atomic<int64_t>> sums(4);
  for (int i = 0; i < 4; ++i)
    callers.emplace_back([&, i] {
      for (int j = 0; j < 500; ++j) pool.run(16, [&](int64_t c) { sums[i].fetch_add(c + 1); });
    });
  for (auto& t : callers) t.join();
  for (auto& s : sums) EXPECT_EQ(s.load(), 500 * (16 * 17 / 2));
}

TEST(ThreadPool, AStalledThreadHoldsOnlyItsOwnChunk) {
  // Chunk 0 blocks until every other chunk has run. With a fixed split of chunks to threads its
  // owner would also hold chunks 1..3 and wait forever; chunks claimed one at a time finish.
  ThreadPool pool(2);
  constexpr int64_t kChunks = 8;
  std::atomic<int64_t> others{0};
  std::atomic<bool> timed_out{false};
  pool.run(kChunks, [&](int64_t c) {
    if (c != 0) {
      others.fetch_add(1);
      return;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (others.load() < kChunks - 1) {
      if (std::chrono::steady_clock::now() > deadline) {
        timed_out = true;
        return;
      }
      std::this_thread::yield();
    }
  });
  EXPECT_FALSE(timed_out.load());
  EXPECT_EQ(others.load(), kChunks - 1);
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

TEST(ThreadPool, IdleWorkersSleepAfterTheirSpin) {
  ThreadPool pool(4, /*spin_us=*/200);
  expect_each_chunk_once(pool, 16, 10);
  // Past the spin our workers sleep; OpenBLAS's own idle threads (started at load, unused here)
  // spin for up to ~0.1 s after start-up before they sleep, so wait them out too.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const double cpu0 = process_cpu_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Three spinning workers would burn ~0.9 s of CPU here; sleeping ones burn none.
  EXPECT_LT(process_cpu_seconds() - cpu0, 0.05);
  expect_each_chunk_once(pool, 16, 10);  // and they wake up for the next job
}

// parallel_for's slices: contiguous, covering [0, n), fixed by n and the thread count alone.
std::vector<std::pair<int64_t, int64_t>> slices_of(int64_t n) {
  std::mutex m;
  std::vector<std::pair<int64_t, int64_t>> s;
  parallel_for(n, [&](int64_t b, int64_t e) {
    std::lock_guard<std::mutex> lock(m);
    s.emplace_back(b, e);
  });
  std::sort(s.begin(), s.end());
  return s;
}

TEST(ParallelFor, SlicesCoverTheRangeAndDependOnlyOnSizeAndThreads) {
  const int saved = num_threads();
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    for (int64_t n : {1, 2, 3, 7, 31, 129, 100000}) {
      const auto s = slices_of(n);
      ASSERT_FALSE(s.empty());
      EXPECT_EQ(s.front().first, 0);
      EXPECT_EQ(s.back().second, n);
      for (size_t i = 0; i + 1 < s.size(); ++i) EXPECT_EQ(s[i].second, s[i + 1].first);
      for (const auto& [b, e] : s) EXPECT_LT(b, e);
      for (int rep = 0; rep < 20; ++rep) ASSERT_EQ(slices_of(n), s);
    }
  }
  set_num_threads(saved);
}

}  // namespace
}  // namespace lowbit
