// Jinja lexer (internal): template source -> tokens, the way @huggingface/jinja splits it.
//
// Before scanning, the source goes through the reference's preprocessing, which is what
// transformers' chat templating configures: one trailing newline removed; lstrip_blocks (spaces
// and tabs before `{%`, `{#` or `{-` at the start of a line removed); trim_blocks (the newline
// right after `%}`, `#}` or `-}` removed); `{% generation %}` / `{% endgeneration %}` tags removed.
// Whitespace control (`{%-`, `-%}`, `{{-`, `-}}`, `{#-`, `-#}`) strips all Unicode whitespace.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lowbit::jinja {

enum class Tok {
  Text,
  Number,          // 12, 1.5, and signed literals the lexer folds: [-1]
  String,          // value is the unescaped contents
  Ident,           // names and keywords alike
  Equals,          // =
  LParen,
  RParen,
  OpenStmt,        // {%
  CloseStmt,       // %}
  OpenExpr,        // {{
  CloseExpr,       // }}
  LBracket,
  RBracket,
  LBrace,
  RBrace,
  Comma,
  Dot,
  Colon,
  Pipe,
  Additive,        // + - ~
  Multiplicative,  // * / // %
  Power,           // **
  Comparison,      // < > <= >= == !=
  Unary,           // a sign not followed by digits, after an operator: -x
  Comment,
};

struct Token {
  Tok type;
  std::string value;
  int line;  // 1-based line in the original source
};

// Throws lowbit::Error("jinja", "line N: ...") on a lexical error (unterminated string or tag,
// bad escape, unexpected character).
std::vector<Token> tokenize(std::string_view source);

const char* token_name(Tok t);

}  // namespace lowbit::jinja
