#include "model/act_quant.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "base/parallel.h"

namespace lowbit {

ActQuant parse_act_quant(std::string_view s) {
  ActQuant a;
  if (s.empty() || s == "none") return a;
  auto bad = [&] {
    return Error("model", "activation quantization '" + std::string(s) + "' is not int<2..8>[:g<group>] or none");
  };
  if (!s.starts_with("int")) throw bad();
  const size_t colon = s.find(':');
  const std::string_view bits = s.substr(3, colon == std::string_view::npos ? std::string_view::npos : colon - 3);
  if (bits.size() != 1 || bits[0] < '2' || bits[0] > '8') throw bad();
  a.bits = bits[0] - '0';
  if (colon != std::string_view::npos) {
    const std::string_view g = s.substr(colon + 1);
    if (g.size() < 2 || g.size() > 7 || g[0] != 'g' || g.find_first_not_of("0123456789", 1) != std::string_view::npos)
      throw bad();
    a.group = std::stoll(std::string(g.substr(1)));
    if (a.group < 1) throw bad();
  }
  return a;
}

std::string act_quant_name(const ActQuant& a) {
  if (!a.enabled()) return "none";
  return "int" + std::to_string(a.bits) + (a.group > 0 ? ":g" + std::to_string(a.group) : std::string());
}

void fake_quantize_rows(const ActQuant& a, float* x, int64_t T, int64_t n) {
  if (!a.enabled()) return;
  const float qmax = static_cast<float>((1 << (a.bits - 1)) - 1);
  const int64_t group = a.group > 0 ? a.group : n;
  parallel_for(T, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t g0 = 0; g0 < n; g0 += group) {
        float* v = x + t * n + g0;
        const int64_t len = std::min(group, n - g0);
        float amax = 0;
        bool finite = true;
        for (int64_t i = 0; i < len; ++i) {
          amax = std::max(amax, std::fabs(v[i]));
          finite = finite && std::isfinite(v[i]);
        }
        if (amax == 0 || !finite) continue;
        const float s = amax / qmax, inv = 1.0f / s;
        for (int64_t i = 0; i < len; ++i) v[i] = s * std::nearbyint(v[i] * inv);
      }
  });
}

}  // namespace lowbit
