#include "serve/jinja.h"

#include "base/error.h"
#include "serve/jinja_eval.h"
#include "serve/jinja_lexer.h"
#include "serve/jinja_parser.h"

namespace lowbit::jinja {

namespace {
constexpr size_t kMaxTemplateBytes = size_t(4) << 20;
}  // namespace

Template::Template(std::string_view source) {
  if (source.size() > kMaxTemplateBytes) {
    throw Error("jinja", "template larger than " + std::to_string(kMaxTemplateBytes) + " bytes");
  }
  // Node reads template files as UTF-8, replacing invalid bytes; do the same.
  program_ = std::make_shared<const Program>(parse(tokenize(sanitize_utf8(source))));
}

Template::~Template() = default;

std::string Template::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
  Interpreter interpreter(options);
  return interpreter.run(*program_, context);
}

}  // namespace lowbit::jinja
