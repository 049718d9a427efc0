#include "fuzz_util.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace lowbit::fuzz {

namespace {

struct ScratchDir {
  std::string path;
  ScratchDir() {
    const char* t = std::getenv("TMPDIR");
    std::string base = t != nullptr && *t != '\0' ? t : "/tmp";
    std::string templ = base + "/lowbit-fuzz-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
      std::perror("lowbit fuzz: mkdtemp");
      std::abort();
    }
    path = templ;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

const std::string& scratch_dir() {
  static const ScratchDir dir;
  return dir.path;
}

std::string write_scratch_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::perror("lowbit fuzz: writing the scratch file");
    std::abort();
  }
  return path;
}

void remove_scratch_file(const std::string& name) {
  std::error_code ec;
  std::filesystem::remove(scratch_dir() + "/" + name, ec);
}

std::pair<std::string_view, std::string_view> split_once(std::string_view s, std::string_view sep) {
  const size_t at = s.find(sep);
  if (at == std::string_view::npos) return {s, {}};
  return {s.substr(0, at), s.substr(at + sep.size())};
}

std::vector<std::string> sample_texts(std::string_view extra) {
  return {"Hello world! It's 2024.", " leading  spaces\n\ttab\r\n", "caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80",
          "\xff\xfe invalid \xc3", std::string(extra.substr(0, 512))};
}

}  // namespace lowbit::fuzz
