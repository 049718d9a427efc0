// Writes safetensors files (the format safetensors_reader.h reads), atomically.
//
// Layout choices: tensors are written in the order added; with `align` > 1 every tensor's data
// starts at a multiple of `align` bytes from the start of the FILE (for mmap-friendly loads).
// The safetensors spec forbids holes between tensors, so alignment gaps are filled with explicit
// padding entries named "__pad.<n>" (dtype U8), and the JSON header is space-padded so the data
// section itself starts aligned. Any safetensors reader can list and load the result.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lowbit {

class SafetensorsWriter {
 public:
  explicit SafetensorsWriter(int64_t align = 8) : align_(align) {}

  // dtype is a safetensors dtype name ("F32", "F16", "BF16", "U8", ...); bytes must match
  // shape x dtype size (checked).
  void add(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
           std::vector<uint8_t> bytes);
  void add_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  // Writes everything to `path` via a temp file + rename; throws lowbit::Error on failure.
  void write(const std::string& path) const;

 private:
  struct Entry {
    std::string name, dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  int64_t align_;
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace lowbit
