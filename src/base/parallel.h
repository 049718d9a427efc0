// Thread-level parallelism for lowbit. One process-wide thread count (default: all cores),
// applied to our own loops and to OpenBLAS. parallel_for splits [0, n) into contiguous chunks,
// one per thread, and calls fn(begin, end) for each; fn must not throw.
#pragma once

#include <cstdint>
#include <functional>

namespace lowbit {

void set_num_threads(int n);  // n <= 0 means "all hardware threads"
int num_threads();

void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

}  // namespace lowbit
