// A streaming-read memory bandwidth probe: every thread sums its own slice of a buffer much
// larger than the last-level cache (default 1 GiB), with wide vector loads; the best of
// `repetitions` passes is reported in GB/s (10^9 bytes/s). This is the ceiling decode can reach
// when the weights do not fit in cache.
#pragma once

#include <cstddef>

namespace lowbit {

double measure_read_bandwidth_gbs(size_t bytes = size_t{1} << 30, int repetitions = 3);

}  // namespace lowbit
