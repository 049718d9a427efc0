// safetensors header (JSON, dtypes, shapes, data_offsets, overlap) and the data ranges: every
// supported tensor is decoded to fp32. The reader only takes a path, so the input goes through a
// scratch file.
#include "fuzz_util.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  const std::string path = fuzz::write_scratch_file("model.safetensors", data, size);
  fuzz::run_parser([&] {
    const SafetensorsFile f(path);
    for (const auto& [name, e] : f.entries()) {
      if (!e.supported || e.view.numel() > (int64_t{1} << 16)) continue;
      const std::vector<float> v = to_f32(f.tensor(name));
      if (static_cast<int64_t>(v.size()) != e.view.numel()) __builtin_trap();
    }
  });
  return 0;
}
