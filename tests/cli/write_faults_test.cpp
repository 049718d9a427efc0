// Faults while writing (issue 14): a full disk and a read-only output directory give a one-line
// error naming the output, exit != 0, and leave neither the output nor a temp file behind. Each
// case runs in a private mount namespace (`unshare --user --map-root-user --mount`) with a small
// tmpfs as the output directory; where the machine does not allow that, the test is skipped.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "testutil.h"

namespace lowbit {
namespace {

constexpr int kNoMount = 77;

std::string q(const std::string& s) { return "'" + s + "'"; }

struct FaultRun {
  bool mounted = false;
  int lowbit_rc = -1;
  std::string err;   // lowbit's stderr
  std::string left;  // what was left in the output directory afterwards
};

// Mounts a tmpfs of `size` on a fresh directory $D, runs the shell words `prepare` (e.g. a
// read-only remount of $D), then `lowbit ARGS` with @OUT@ replaced by "$D/out", and lists $D.
FaultRun run_with_output_on_tmpfs(const std::string& size, const std::string& prepare, std::string args) {
  const std::string dir = test::temp_dir();
  args.replace(args.find("@OUT@"), 5, dir + "/out");
  const std::string script = "D=" + dir + "; mount -t tmpfs -o size=" + size + " tmpfs $D 2>/dev/null || exit " +
                             std::to_string(kNoMount) + "; " + prepare + " " + test::lowbit_bin() + " " + args +
                             "; echo $?; ls -A " + dir;
  const test::CommandResult r =
      test::run_command("unshare --user --map-root-user --mount bash -c " + q(script));
  FaultRun f;
  const size_t nl = r.out.find('\n');
  if (r.exit_code != 0 || nl == std::string::npos) {
    f.err = r.err;
    return f;
  }
  f.mounted = true;
  f.lowbit_rc = std::stoi(r.out.substr(0, nl));
  f.err = r.err;
  f.left = r.out.substr(nl + 1);
  return f;
}

void expect_clean_failure(const FaultRun& f, const std::string& reason) {
  EXPECT_NE(f.lowbit_rc, 0);
  EXPECT_LT(f.lowbit_rc, 128) << "killed by a signal";
  EXPECT_EQ(std::count(f.err.begin(), f.err.end(), '\n'), 1) << f.err;
  EXPECT_NE(f.err.find("/out"), std::string::npos) << "error names the output: " << f.err;
  EXPECT_NE(f.err.find(reason), std::string::npos) << f.err;
  EXPECT_EQ(f.left, "") << "left behind in the output directory";
}

const std::string kStories = "--model " + test::shared_path("models/stories260K/stories260K.bin");

TEST(WriteFaults, FullDiskLeavesNothingBehind) {
  // stories260K at int8 is ~0.4 MB: it does not fit in 64 KiB.
  FaultRun f = run_with_output_on_tmpfs("64k", "", "quantize " + kStories + " -r rtn:int8:g32 -o @OUT@");
  if (!f.mounted) GTEST_SKIP() << "no private mount namespace here: " << f.err;
  expect_clean_failure(f, "No space left on device");
  f = run_with_output_on_tmpfs("64k", "", "export " + kStories + " --format gguf -o @OUT@");
  expect_clean_failure(f, "No space left on device");
}

TEST(WriteFaults, ReadOnlyOutputDirectoryIsAnError) {
  FaultRun f = run_with_output_on_tmpfs("1m", "mount -o remount,ro $D &&",
                                        "quantize " + kStories + " -r rtn:int8:g32 -o @OUT@");
  if (!f.mounted) GTEST_SKIP() << "no private mount namespace here: " << f.err;
  expect_clean_failure(f, "Read-only file system");
}

}  // namespace
}  // namespace lowbit
