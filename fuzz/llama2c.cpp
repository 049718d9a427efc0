// llama2.c checkpoints (legacy and version-1 "ak42" headers, size checks, shared classifier) and
// their config's validation. The loader only takes a path: scratch file.
#include "fuzz_util.h"
#include "io/llama2c.h"
#include "io/model_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  const std::string path = fuzz::write_scratch_file("model.bin", data, size);
  fuzz::run_parser([&] {
    const ModelSource src = load_llama2c_model(path);
    check_canonical_tensors(src);
    for (const auto& [name, v] : src.tensors)
      if (v.numel() <= 4096) (void)to_f32(v);
  });
  return 0;
}
