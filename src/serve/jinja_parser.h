// Jinja parser (internal): tokens -> syntax tree, with the grammar and operator precedence of
// @huggingface/jinja. Errors are lowbit::Error("jinja", "line N: ...").
#pragma once

#include <vector>

#include "serve/jinja_ast.h"
#include "serve/jinja_lexer.h"

namespace lowbit::jinja {

// Nesting of statements and expressions the parser follows (each level is a few stack frames).
inline constexpr int kMaxParseDepth = 256;

Program parse(std::vector<Token> tokens);

}  // namespace lowbit::jinja
