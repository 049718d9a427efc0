// safetensors reader: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}
// then the data section; offsets are relative to its start (byte 8 + N).
// Every size, offset and shape is validated against the file; tensors may not overlap.
// Supported dtypes: F32, F16, BF16 (others are listed but data access throws).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/mapped_file.h"
#include "io/tensor.h"

namespace lowbit {

struct SafetensorsEntry {
  std::string dtype_name;  // as written in the file ("F32", "I64", ...)
  bool supported = false;  // dtype is one lowbit reads
  TensorView view;         // data/nbytes valid for every entry; dtype meaningful if supported
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_.path(); }
  // The whole file's bytes (every entry's view points inside them).
  const uint8_t* file_data() const { return file_.data(); }
  size_t file_size() const { return file_.size(); }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // View of a supported tensor; throws lowbit::Error if missing or of an unsupported dtype.
  const TensorView& tensor(const std::string& name) const;

 private:
  void parse_header();
  void check_no_overlap() const;

  MappedFile file_;
  size_t data_begin_ = 0;
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// A model stored as one model.safetensors or as shards listed in model.safetensors.index.json.
// Maps tensor name -> view; keeps every shard mapped.
struct SafetensorsSet {
  std::vector<std::shared_ptr<const SafetensorsFile>> files;
  std::map<std::string, const SafetensorsEntry*> entries;
};

// Opens dir/model.safetensors or dir/model.safetensors.index.json (and its shards).
SafetensorsSet open_safetensors_dir(const std::string& dir);

}  // namespace lowbit
