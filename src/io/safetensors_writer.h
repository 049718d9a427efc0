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

class AtomicFile;

class SafetensorsWriter {
 public:
  explicit SafetensorsWriter(int64_t align = 8) : align_(align) {}
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // dtype is a safetensors dtype name ("F32", "F16", "BF16", "U8", ...); bytes must match
  // shape x dtype size (checked).
  void add(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
           std::vector<uint8_t> bytes);
  // The same from a buffer (copied or spilled before returning).
  void add(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
           const void* data, size_t nbytes);
  // Sends the bytes of this and later add() calls to a temp file beside `path`. Call before the
  // first add(). Throws lowbit::Error if the temp file cannot be created.
  void spill_beside(const std::string& path);
  void add_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  // Writes everything to `path` via a temp file + rename; throws lowbit::Error on failure.
  void write(const std::string& path) const;

 private:
  struct Entry {
    std::string name, dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;  // in memory, or empty when spilled
    int64_t nbytes = 0;
    int64_t spill_offset = -1;   // where the bytes start in the spill file, -1 if in memory
  };
  void check_new(const std::string& name, const std::string& dtype, const std::vector<int64_t>& shape,
                 size_t nbytes) const;
  void copy_spilled(const Entry& e, AtomicFile& out) const;
  int64_t align_;
  int spill_fd_ = -1;
  std::string spill_path_;
  int64_t spill_size_ = 0;
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace lowbit
