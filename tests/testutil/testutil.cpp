#include "testutil.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "base/error.h"

namespace lowbit::test {

namespace fs = std::filesystem;

std::string shared_dir() {
  const char* env = std::getenv("LOWBIT_SHARED");
  return env && *env ? env : LOWBIT_SHARED_DEFAULT;
}

std::string shared_path(const std::string& rel) { return shared_dir() + "/" + rel; }

std::string test_source_path(const std::string& rel) { return std::string(LOWBIT_TESTS_DIR) + "/" + rel; }

namespace {
struct TempRoot {
  fs::path root;
  TempRoot() {
    std::string tmpl = (fs::temp_directory_path() / "lowbit-test-XXXXXX").string();
    root = ::mkdtemp(tmpl.data());
  }
  ~TempRoot() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};
}  // namespace

std::string temp_dir() {
  static TempRoot root;
  static int counter = 0;
  fs::path p = root.root / std::to_string(counter++);
  fs::create_directories(p);
  return p.string();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string lowbit_bin() {
  const char* env = std::getenv("LOWBIT_BIN");
  return env && *env ? env : "lowbit";
}

CommandResult run_command(const std::string& cmdline) {
  const std::string dir = temp_dir();
  const std::string out = dir + "/stdout", err = dir + "/stderr";
  const std::string full = "(" + cmdline + ") >" + out + " 2>" + err + " </dev/null";
  const int status = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

void expect_error(const std::function<void()>& f, const std::string& needle, const std::string& component) {
  try {
    f();
    ADD_FAILURE() << "no error, expected '" << needle << "'";
  } catch (const Error& e) {
    if (!component.empty()) {
      EXPECT_EQ(e.component(), component) << e.what();
    }
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace lowbit::test
