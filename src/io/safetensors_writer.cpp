#include "io/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"

namespace lowbit {

namespace {

size_t dtype_size(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "U8" || d == "I8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

int64_t round_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

SafetensorsWriter::~SafetensorsWriter() {
  if (spill_fd_ >= 0) ::close(spill_fd_);
}

void SafetensorsWriter::spill_beside(const std::string& path) {
  LOWBIT_ASSERT(entries_.empty() && spill_fd_ < 0);
  std::string tmpl = directory_of(path) + "/.lowbit-spill-XXXXXX";
  spill_fd_ = ::mkstemp(tmpl.data());
  if (spill_fd_ < 0) throw Error("io", path + ": cannot create a temp file beside it: " + std::strerror(errno));
  ::unlink(tmpl.c_str());  // freed by the kernel when closed, even after a crash
  spill_path_ = path;
}

void SafetensorsWriter::check_new(const std::string& name, const std::string& dtype,
                                  const std::vector<int64_t>& shape, size_t nbytes) const {
  const size_t es = dtype_size(dtype);
  if (es == 0) throw Error("safetensors", "cannot write unknown dtype '" + dtype + "'");
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  LOWBIT_ASSERT(static_cast<size_t>(n) * es == nbytes);
  for (const Entry& e : entries_) {
    if (e.name == name) throw Error("safetensors", "tensor '" + name + "' added twice");
  }
}

void SafetensorsWriter::add(const std::string& name, const std::string& dtype,
                            std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
  if (spill_fd_ >= 0) {
    add(name, dtype, std::move(shape), bytes.data(), bytes.size());
    return;
  }
  check_new(name, dtype, shape, bytes.size());
  const auto n = static_cast<int64_t>(bytes.size());
  entries_.push_back({name, dtype, std::move(shape), std::move(bytes), n, -1});
}

void SafetensorsWriter::add(const std::string& name, const std::string& dtype,
                            std::vector<int64_t> shape, const void* data, size_t nbytes) {
  if (spill_fd_ < 0) {
    const auto* p = static_cast<const uint8_t*>(data);
    add(name, dtype, std::move(shape), std::vector<uint8_t>(p, p + nbytes));
    return;
  }
  check_new(name, dtype, shape, nbytes);
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t done = 0; done < nbytes;) {
    const ssize_t w = ::write(spill_fd_, p + done, nbytes - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw Error("io", spill_path_ + ": writing the temp file failed: " + std::strerror(errno));
    done += static_cast<size_t>(w);
  }
  entries_.push_back({name, dtype, std::move(shape), {}, static_cast<int64_t>(nbytes), spill_size_});
  spill_size_ += static_cast<int64_t>(nbytes);
}

void SafetensorsWriter::copy_spilled(const Entry& e, AtomicFile& out) const {
  std::vector<uint8_t> buf(static_cast<size_t>(std::min<int64_t>(e.nbytes, 8 << 20)));
  for (int64_t done = 0; done < e.nbytes;) {
    const size_t want = static_cast<size_t>(std::min<int64_t>(e.nbytes - done, static_cast<int64_t>(buf.size())));
    const ssize_t r = ::pread(spill_fd_, buf.data(), want, e.spill_offset + done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) throw Error("io", spill_path_ + ": reading the temp file failed: " + std::strerror(errno));
    out.write(buf.data(), static_cast<size_t>(r));
    done += r;
  }
}

void SafetensorsWriter::write(const std::string& path) const {
  // Plan offsets (relative to the data section, which will start `align_`-aligned).
  nlohmann::ordered_json header;
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  std::vector<std::pair<int64_t, const Entry*>> plan;  // padding before each entry
  int64_t off = 0, pads = 0;
  for (const Entry& e : entries_) {
    const int64_t start = round_up(off, align_);
    if (start > off) {
      header["__pad." + std::to_string(pads++)] = {{"dtype", "U8"}, {"shape", {start - off}}, {"data_offsets", {off, start}}};
    }
    plan.emplace_back(start - off, &e);
    const int64_t end = start + e.nbytes;
    header[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {start, end}}};
    off = end;
  }
  std::string json = header.dump();
  json.resize(static_cast<size_t>(round_up(8 + static_cast<int64_t>(json.size()), align_) - 8), ' ');
  AtomicFile f(path);
  const uint64_t n = json.size();
  f.write(&n, 8);
  f.write(json);
  const std::vector<uint8_t> zeros(static_cast<size_t>(align_), 0);
  for (const auto& [pad, e] : plan) {
    f.write(zeros.data(), static_cast<size_t>(pad));
    if (e->spill_offset >= 0) copy_spilled(*e, f);
    else f.write(e->bytes.data(), e->bytes.size());
  }
  f.commit();
}

}  // namespace lowbit
