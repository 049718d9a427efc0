#include "formats/fp4.h"

#include "formats/codec_impl.h"

namespace lowbit {

namespace {
struct Fp4Kind {
  static GroupParams fit(const QuantSpec& s, const float* w, int64_t n, float clip) {
    return fp4_fit(s, w, n, clip);
  }
  static uint8_t encode(const QuantSpec& s, float w, const GroupParams& p) {
    return fp4_encode(s, w, p);
  }
  static float decode(const QuantSpec& s, uint8_t q, const GroupParams& p) {
    return fp4_decode(s, q, p);
  }
  static float reconstruct(const QuantSpec& s, float w, const GroupParams& p) {
    return fp4_reconstruct(s, w, p);
  }
};
}  // namespace

GroupParams fp4_fit(const QuantSpec& s, const float* w, int64_t n, float clip) {
  return make_group_params(s, round_scale(s, clip * detail::group_absmax(w, n) / kFp4Max));
}

const GroupCodec kFp4Codec = detail::make_group_codec<Fp4Kind>();

}  // namespace lowbit
