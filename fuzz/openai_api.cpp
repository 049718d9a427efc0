// HTTP request bodies of /v1/completions and /v1/chat/completions (parse_api_request): byte 0
// picks the endpoint, the rest is the body. A bad request is an ApiError (HTTP 400), the
// expected outcome; its JSON error body is built too, as the server does.
#include "fuzz_util.h"
#include "serve/openai_api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  if (size < 1) return 0;
  const Endpoint e = data[0] & 1 ? Endpoint::Chat : Endpoint::Completions;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const ApiRequest r = parse_api_request(body, e);
    const std::vector<ChoiceReply> choices(static_cast<size_t>(r.n), ChoiceReply{"text", "stop", nullptr});
    (void)completion_body(r, "cmpl-fuzz", 0, choices, 1, r.n);
  } catch (const ApiError& err) {
    (void)dump_json(err.body());
  } catch (const Error&) {
  }
  return 0;
}
