#include "formats/nf4.h"

#include "formats/codec_impl.h"

namespace lowbit {

namespace {
struct Nf4Kind {
  static GroupParams fit(const QuantSpec& s, const float* w, int64_t n, float clip) {
    return nf4_fit(s, w, n, clip);
  }
  static uint8_t encode(const QuantSpec& s, float w, const GroupParams& p) {
    return nf4_encode(s, w, p);
  }
  static float decode(const QuantSpec& s, uint8_t q, const GroupParams& p) {
    return nf4_decode(s, q, p);
  }
  static float reconstruct(const QuantSpec& s, float w, const GroupParams& p) {
    return nf4_reconstruct(s, w, p);
  }
};
}  // namespace

GroupParams nf4_fit(const QuantSpec& s, const float* w, int64_t n, float clip) {
  return make_group_params(s, round_scale(s, clip * detail::group_absmax(w, n)));
}

const GroupCodec kNf4Codec = detail::make_group_codec<Nf4Kind>();

}  // namespace lowbit
