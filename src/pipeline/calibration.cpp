#include "pipeline/calibration.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>

#include "base/error.h"
#include "base/mapped_file.h"

namespace lowbit {

namespace {

constexpr const char* kComp = "calibration";

std::vector<std::string> source_files(const std::string& source) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(source, ec)) return {source};
  if (!fs::is_directory(source, ec)) throw Error(kComp, source + ": no such file or directory");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(source, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.empty() && name[0] != '.' && e.is_regular_file()) files.push_back(e.path().string());
  }
  if (ec) throw Error(kComp, source + ": cannot list: " + ec.message());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw Error(kComp, source + ": no files");
  return files;
}

// The tokenizer's kind, plus the hash and size of its serialized form (computed once per load).
std::string tokenizer_fingerprint(const Tokenizer& tokenizer) {
  const TokenizerBlob blob = tokenizer.to_blob();
  return blob.kind + '\0' + std::to_string(std::hash<std::string>{}(blob.bytes)) + '\0' +
         std::to_string(blob.bytes.size());
}

// A file's token ids, kept for the rest of the process: one run reads the same text several times
// (a --target-size measurement, then the quantization, then --tune), and tokenizing the default
// mix is ~8 % of a first ref-m --target-size run (perf). Keyed by the tokenizer's serialized form,
// the file's path, size and modification time, so another tokenizer or an edited file misses.
// `tokenizer_key` is tokenizer_fingerprint(tokenizer).
std::shared_ptr<const std::vector<int32_t>> file_tokens(const Tokenizer& tokenizer, const std::string& tokenizer_key,
                                                        const std::string& file) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  const auto mtime = fs::last_write_time(file, ec).time_since_epoch().count();
  const std::string key = tokenizer_key + '\0' + file + '\0' + std::to_string(size) + '\0' + std::to_string(mtime);
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const std::vector<int32_t>>> cache;
  {
    const std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache.find(key); !ec && it != cache.end()) return it->second;
  }
  auto ids = std::make_shared<const std::vector<int32_t>>(tokenizer.encode(read_text_file(file), false));
  if (!ec) {
    const std::lock_guard<std::mutex> lock(mu);
    cache[key] = ids;
  }
  return ids;
}

}  // namespace

std::string default_calibration_source() {
  const char* shared = std::getenv("LOWBIT_SHARED");
  return std::string(shared != nullptr && *shared != '\0' ? shared : "../shared") + "/data/calibration";
}

CalibrationSet load_calibration(const Tokenizer& tokenizer, const CalibrationOptions& opt) {
  if (opt.windows < 1 || opt.window_len < 1)
    throw Error(kComp, "need at least 1 window of at least 1 token (got " + std::to_string(opt.windows) +
                           " x " + std::to_string(opt.window_len) + ")");
  CalibrationSet set;
  set.window_len = opt.window_len;
  std::vector<std::shared_ptr<const std::vector<int32_t>>> streams;  // files with at least window_len tokens
  std::vector<int64_t> starts;                // cumulative count of valid window starts
  int64_t total_starts = 0;
  const std::string tokenizer_key = tokenizer_fingerprint(tokenizer);
  for (const std::string& file : source_files(opt.source)) {
    std::shared_ptr<const std::vector<int32_t>> ids = file_tokens(tokenizer, tokenizer_key, file);
    set.source_tokens += static_cast<int64_t>(ids->size());
    set.files.push_back(file);
    if (static_cast<int64_t>(ids->size()) < opt.window_len) continue;
    total_starts += static_cast<int64_t>(ids->size()) - opt.window_len + 1;
    starts.push_back(total_starts);
    streams.push_back(std::move(ids));
  }
  if (streams.empty())
    throw Error(kComp, opt.source + ": no file has " + std::to_string(opt.window_len) + " tokens");
  std::mt19937_64 rng(opt.seed);
  for (int64_t w = 0; w < opt.windows; ++w) {
    const auto pick = static_cast<int64_t>(rng() % static_cast<uint64_t>(total_starts));
    const size_t f = static_cast<size_t>(std::upper_bound(starts.begin(), starts.end(), pick) - starts.begin());
    const int64_t offset = pick - (f == 0 ? 0 : starts[f - 1]);
    const auto begin = streams[f]->begin() + offset;
    set.windows.emplace_back(begin, begin + opt.window_len);
  }
  return set;
}

}  // namespace lowbit
