// gtest main for every lowbit test binary: pins OpenBLAS's kernel set like the CLI does.
#include <gtest/gtest.h>

#include "base/cpu.h"

int main(int argc, char** argv) {
  lowbit::configure_runtime(argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
