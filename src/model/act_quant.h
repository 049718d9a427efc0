// Activation quantization as an evaluation mode (W8A8 / W4A8 / W4A4 studies): the input of a
// linear layer is rounded to a symmetric integer grid per token, or per group of `group` numbers
// of a token, before the product:
//   s = max|x over the group| / (2^(bits−1) − 1),   x̂ = s · round(x / s)
// ("fake quantization": the product itself still runs in the layer's own kernel). A layer with an
// input rotation (:had) rounds the rotated input, as a low-bit kernel after the rotation would.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lowbit {

struct ActQuant {
  int bits = 0;        // 0: off; else 2..8
  int64_t group = 0;   // 0: one scale per token (row)
  bool enabled() const { return bits > 0; }
};

// "int8", "int4", "int4:g128"; "" or "none" is off. Throws lowbit::Error("model", ...) otherwise.
ActQuant parse_act_quant(std::string_view s);
std::string act_quant_name(const ActQuant& a);  // "int4:g128", "none"

// Rounds each of the T rows of x[T, n] in place as described above (groups may be short at the
// end of a row; a group of zeros stays zero; non-finite values stay non-finite).
void fake_quantize_rows(const ActQuant& a, float* x, int64_t T, int64_t n);

}  // namespace lowbit
