// Hugging Face integer-quantized checkpoints: the per-Linear tensor layouts of GPTQ (AutoGPTQ /
// GPTQModel "gptq" v1 and "gptq_v2"), AWQ (AutoAWQ GEMM) and compressed-tensors pack-quantized
// (llm-compressor), in both directions: QuantizedMatrix -> packed arrays (export) and packed
// arrays -> QuantizedMatrix (import). docs/FORMAT.md "Hugging Face quantized checkpoints" states
// every layout; in short, for a Linear with weight [out, in] (lowbit rows = out, cols = in), G
// groups along `in`, b-bit codes q and zero-points z (value = scale * (q - z)):
//
//   GPTQ   qweight I32 [in*b/32, out]: column o is the b-bit codes of weight row o, as one
//          LSB-first bit stream running down the column (word k = bits [32k, 32k+32) of the
//          stream; for b = 3 codes straddle words). qzeros I32 [G, out*b/32]: row g is the
//          stream of the G-th zero-points of all outputs, stored as z - 1 ("gptq" v1) or z
//          ("gptq_v2"). scales F16 [G, out]. g_idx I32 [in]: group of each input.
//   AWQ    b = 4 only. qweight I32 [in, out/8]: word (i, c) holds outputs 8c + {0,2,4,6,1,3,5,7}
//          in nibbles 0..7. qzeros I32 [G, out/8] likewise (z itself). scales F16 [G, out].
//   compressed-tensors pack-quantized, b = 4 or 8: weight_packed I32 [out, ceil(in/(32/b))]:
//          row o is the LSB-first stream of (q_signed + 2^(b-1)) = lowbit's code q, zero padded.
//          weight_scale F16/BF16 [out, G]. weight_zero_point I32 [ceil(out/(32/b)), G] (asym
//          only): column g is the stream of the unsigned zero-points of all outputs.
//          weight_shape I64 [2] = {out, in}.
//   compressed-tensors int-quantized (llm-compressor's W8A8 "int8" schemes), b = 8: weight I8
//          [out, in] = the signed code q - 128 (symmetric: value = scale * weight); weight_scale
//          F16/BF16 [out, G] (G = 1 for strategy "channel"); asymmetric groups add
//          weight_zero_point I8 [out, G] = z - 128. lowbit writes it as "compressed-tensors-w8a8":
//          per-channel symmetric int8 weights with input_activations int8, strategy "token",
//          dynamic (vLLM's W8A8 int8 path); it reads any int-quantized int8 group.
//
// Export keeps every value bit-exact. Where the target cannot hold a group as stored, the group is
// rewritten to the same values: "flipped" (scale -> -scale, q -> 2^b-1-q, z -> 2^b-1-z, so
// scale*(q - z) is unchanged bit for bit). AWQ flips every negative-scale group (AWQ checkpoints
// carry positive scales); GPTQ v1 flips asymmetric groups with z = 0 (z - 1 = -1 cannot be stored).
// lowbit's symmetric grids keep their signed scales in GPTQ and compressed-tensors: their levels
// scale*(q - 2^(b-1)) reach -2^(b-1) on the side of the group's largest magnitude, which a
// positive scale with the fixed zero 2^(b-1) cannot express; every kernel of these formats
// computes scale*(q - z) and is indifferent to the sign.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "formats/quantized_matrix.h"
#include "io/safetensors.h"

namespace lowbit {

// CompressedTensorsW8A8 is an export target only: a checkpoint read back is CompressedTensors
// with int-quantized groups.
enum class HfQuantFormat : uint8_t { Gptq, Awq, CompressedTensors, CompressedTensorsW8A8 };

// "gptq", "awq", "compressed-tensors", "compressed-tensors-w8a8".
const char* hf_quant_format_name(HfQuantFormat f);
// Parses the names above; throws lowbit::Error("export", ...) listing them.
HfQuantFormat parse_hf_quant_format(std::string_view s);

// ---- Export -------------------------------------------------------------------------------------
// One array of a packed Linear, stored as "<module>.<suffix>".
struct HfPackedTensor {
  std::string suffix;          // "qweight", "qzeros", "scales", "g_idx", "weight_packed", ...
  std::string dtype;           // safetensors dtype: I32, I64, F16, BF16
  std::vector<int64_t> shape;  // outermost first
  std::vector<uint8_t> bytes;  // little-endian
};

// Why m cannot be written exactly in format f, or "" when it can (int grid of the allowed bits,
// no double quantization, fp16 scales (bf16 allowed for compressed-tensors), shape constraints).
std::string hf_quant_unsupported_reason(HfQuantFormat f, const QuantizedMatrix& m);

// The arrays that store m in format f (throws lowbit::Error("export", reason) when the reason
// above is non-empty). `flipped`, if given, receives the number of groups rewritten (see above).
std::vector<HfPackedTensor> pack_hf_linear(HfQuantFormat f, const QuantizedMatrix& m,
                                           int64_t* flipped = nullptr);

// ---- Import -------------------------------------------------------------------------------------
// Weight quantization of one compressed-tensors config group.
struct HfCtScheme {
  std::vector<std::string> targets;  // "Linear", module names, or "re:<regex>"
  bool int_quantized = false;        // format "int-quantized" (weight I8) instead of pack-quantized
  bool token_int8_activations = false;  // input_activations: int8, per token, dynamic (W8A8)
  int bits = 0;
  int64_t group_size = -1;  // -1: strategy "channel"
  bool sym = true;
  bool act_order = false;  // actorder set: a weight_g_idx may permute the inputs
};

// The `quantization_config` block of config.json.
struct HfQuantConfig {
  HfQuantFormat format = HfQuantFormat::Gptq;
  int bits = 0;             // gptq / awq
  int64_t group_size = -1;  // gptq / awq; -1 = per-channel
  bool sym = true;
  bool desc_act = false;
  int zero_offset = 1;  // gptq: stored zero-point + zero_offset = z (1 for "gptq", 0 for v2)
  std::vector<HfCtScheme> ct_groups;   // compressed-tensors
  std::vector<std::string> ct_ignore;  // compressed-tensors
  std::string summary;                 // e.g. "gptq int4 g128 sym" (for ModelSource::recipe)
};

// nullopt when the config has no quantization_config; throws lowbit::Error("config", ...) for
// one lowbit cannot read (unknown quant_method, unsupported bits/version/format), naming `where`.
std::optional<HfQuantConfig> parse_hf_quant_config(const std::string& config_json_text,
                                                   const std::string& where);

// A Linear read back from a checkpoint.
struct HfLinear {
  bool quantized = true;
  QuantizedMatrix matrix;     // when quantized
  std::vector<float> values;  // [rows, cols] fp32 otherwise
  std::string note;           // why it had to be dequantized (act-order g_idx, odd group, ...)
};

// True if `module` (e.g. "model.layers.0.self_attn.q_proj") is stored packed in `set`.
bool hf_linear_is_packed(const HfQuantConfig& cfg, const SafetensorsSet& set,
                         const std::string& module);

// Reads a packed Linear whose weight is [rows, cols]. Throws lowbit::Error("model", ...) naming
// the tensor for missing arrays, wrong dtypes or shapes and out-of-range g_idx. The result is a
// QuantizedMatrix (int<b>, fp16/bf16 scales, sym when every zero-point is 2^(b-1)) whenever the
// grid fits one; otherwise (act-order g_idx, a group size lowbit's specs do not allow, zero-point
// 2^b, fp32 scales) the dequantized fp32 values, with a note.
HfLinear unpack_hf_linear(const HfQuantConfig& cfg, const SafetensorsSet& set,
                          const std::string& module, int64_t rows, int64_t cols);

}  // namespace lowbit
