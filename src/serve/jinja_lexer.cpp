#include "serve/jinja_lexer.h"

#include <cctype>

#include "base/error.h"
#include "serve/jinja_value.h"

namespace lowbit::jinja {

namespace {

// Source text with the original line of every byte, so that errors name the line the author
// wrote even after preprocessing removed newlines.
struct Source {
  std::string text;
  std::vector<int> line;

  void push(char c, int ln) {
    text += c;
    line.push_back(ln);
  }
  void append(const Source& s, size_t from, size_t to) {
    text.append(s.text, from, to - from);
    line.insert(line.end(), s.line.begin() + static_cast<std::ptrdiff_t>(from), s.line.begin() + static_cast<std::ptrdiff_t>(to));
  }
};

Source with_lines(std::string_view s) {
  Source src;
  src.text.assign(s);
  src.line.reserve(s.size());
  int ln = 1;
  for (char c : s) {
    src.line.push_back(ln);
    if (c == '\n') ++ln;
  }
  return src;
}

bool line_terminator_ends_at(const std::string& t, size_t i) {  // t[i] ends \n, \r, U+2028 or U+2029
  if (t[i] == '\n' || t[i] == '\r') return true;
  return i >= 2 && t[i - 2] == '\xe2' && t[i - 1] == '\x80' && (t[i] == '\xa8' || t[i] == '\xa9');
}

// lstrip_blocks: /^[ \t]*({[#%-])/gm -> "$1"
Source lstrip_blocks(const Source& in) {
  Source out;
  const std::string& t = in.text;
  bool line_start = true;
  for (size_t i = 0; i < t.size(); ++i) {
    if (line_start) {
      size_t j = i;
      while (j < t.size() && (t[j] == ' ' || t[j] == '\t')) ++j;
      if (j + 1 < t.size() && t[j] == '{' && (t[j + 1] == '#' || t[j + 1] == '%' || t[j + 1] == '-')) i = j;
    }
    out.push(t[i], in.line[i]);
    line_start = line_terminator_ends_at(t, i);
  }
  return out;
}

// trim_blocks: /([#%-]})\n/g -> "$1"
Source trim_blocks(const Source& in) {
  Source out;
  const std::string& t = in.text;
  for (size_t i = 0; i < t.size(); ++i) {
    out.push(t[i], in.line[i]);
    if ((t[i] == '#' || t[i] == '%' || t[i] == '-') && i + 2 < t.size() && t[i + 1] == '}' && t[i + 2] == '\n') {
      out.push('}', in.line[i + 1]);
      i += 2;
    }
  }
  return out;
}

size_t skip_space(const std::string& t, size_t i) {
  while (size_t n = whitespace_at(t, i)) i += n;
  return i;
}

// transformers' {% generation %} / {% endgeneration %} markers are dropped, honouring `-`.
Source drop_generation_tags(const Source& in) {
  const std::string& t = in.text;
  Source out;
  size_t last = 0;
  for (size_t k = t.find("{%"); k != std::string::npos;) {
    size_t i = k + 2;
    const bool lstrip = i < t.size() && t[i] == '-';
    if (lstrip) ++i;
    i = skip_space(t, i);
    bool matched = false;
    size_t after_start = 0, end = 0;
    bool rstrip = false;
    const size_t word = t.compare(i, 13, "endgeneration") == 0 ? 13 : t.compare(i, 10, "generation") == 0 ? 10 : 0;
    if (word) {
      i = skip_space(t, i + word);
      rstrip = i < t.size() && t[i] == '-';
      if (rstrip) ++i;
      if (t.compare(i, 2, "%}") == 0) {
        matched = true;
        after_start = i + 2;
        end = skip_space(t, after_start);
      }
    }
    if (!matched) {
      k = t.find("{%", k + 1);
      continue;
    }
    size_t cut = k;
    while (lstrip && cut > last) {
      const size_t n = whitespace_before(t, cut);
      if (n == 0 || cut - n < last) break;
      cut -= n;
    }
    out.append(in, last, cut);
    if (!rstrip) out.append(in, after_start, end);
    last = end;
    k = t.find("{%", last);
  }
  out.append(in, last, t.size());
  return out;
}

Source preprocess(std::string_view source) {
  Source src = with_lines(source);
  if (!src.text.empty() && src.text.back() == '\n') {
    src.text.pop_back();
    src.line.pop_back();
  }
  return drop_generation_tags(trim_blocks(lstrip_blocks(src)));
}

struct Rule {
  const char* seq;
  Tok type;
};

// The reference's ordered mapping table (first match wins among rules for the same character).
constexpr Rule kRules[] = {
    {"{%", Tok::OpenStmt},   {"%}", Tok::CloseStmt},      {"{{", Tok::OpenExpr},       {"}}", Tok::CloseExpr},
    {"(", Tok::LParen},      {")", Tok::RParen},          {"{", Tok::LBrace},          {"}", Tok::RBrace},
    {"[", Tok::LBracket},    {"]", Tok::RBracket},        {",", Tok::Comma},           {".", Tok::Dot},
    {":", Tok::Colon},       {"|", Tok::Pipe},            {"<=", Tok::Comparison},     {">=", Tok::Comparison},
    {"==", Tok::Comparison}, {"!=", Tok::Comparison},     {"<", Tok::Comparison},      {">", Tok::Comparison},
    {"+", Tok::Additive},    {"-", Tok::Additive},        {"~", Tok::Additive},        {"**", Tok::Power},
    {"*", Tok::Multiplicative}, {"//", Tok::Multiplicative}, {"/", Tok::Multiplicative}, {"%", Tok::Multiplicative},
    {"=", Tok::Equals},
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

class Lexer {
 public:
  explicit Lexer(Source src) : src_(std::move(src)), t_(src_.text) {}

  std::vector<Token> run() {
    while (pos_ < t_.size()) step();
    return std::move(tokens_);
  }

 private:
  Source src_;
  const std::string& t_;
  size_t pos_ = 0;
  int curly_depth_ = 0;
  std::vector<Token> tokens_;

  int line_at(size_t p) const {
    if (src_.line.empty()) return 1;
    return src_.line[std::min(p, src_.line.size() - 1)];
  }
  [[noreturn]] void fail(size_t p, const std::string& msg) const {
    throw Error("jinja", "line " + std::to_string(line_at(p)) + ": " + msg);
  }
  void push(Tok type, std::string value, size_t at) { tokens_.push_back(Token{type, std::move(value), line_at(at)}); }
  bool last_is(Tok t) const { return !tokens_.empty() && tokens_.back().type == t; }

  void strip_trailing_text_space() {
    if (!last_is(Tok::Text)) return;
    tokens_.back().value = trim_end(tokens_.back().value);
    if (tokens_.back().value.empty()) tokens_.pop_back();
  }
  void skip_leading_space() { pos_ = skip_space(t_, pos_); }

  void step();
  bool text();
  bool open_or_comment();
  bool close_with_dash();
  bool sign();
  bool rule();
  void string_literal(char quote);
  std::string digits();
};

void Lexer::step() {
  if (text() || open_or_comment()) return;
  // Whitespace inside a tag is skipped; running out of input while skipping is an error.
  while (size_t n = whitespace_at(t_, pos_)) {
    pos_ += n;
    if (pos_ >= t_.size()) fail(pos_, "unexpected end of template inside a tag");
  }
  if (close_with_dash() || sign() || rule()) return;
  const char c = t_[pos_];
  if (c == '\'' || c == '"') {
    string_literal(c);
  } else if (is_digit(c)) {
    const size_t start = pos_;
    std::string num = digits();
    if (!last_is(Tok::Dot) && pos_ + 1 < t_.size() && t_[pos_] == '.' && is_digit(t_[pos_ + 1])) {
      ++pos_;
      num += '.';
      num += digits();
    }
    push(Tok::Number, num, start);
  } else if (is_word(c)) {
    const size_t start = pos_;
    while (pos_ < t_.size() && is_word(t_[pos_])) ++pos_;
    if (pos_ >= t_.size()) fail(start, "unexpected end of template inside a tag");
    push(Tok::Ident, t_.substr(start, pos_ - start), start);
  } else {
    size_t len = 1;
    while (pos_ + len < t_.size() && (static_cast<unsigned char>(t_[pos_ + len]) & 0xc0) == 0x80) ++len;
    fail(pos_, "unexpected character '" + t_.substr(pos_, len) + "'");
  }
}

// Text between tags: runs to the next "{%", "{{" or "{#".
bool Lexer::text() {
  if (!(tokens_.empty() || last_is(Tok::CloseStmt) || last_is(Tok::CloseExpr) || last_is(Tok::Comment))) return false;
  size_t end = pos_;
  while (true) {
    end = t_.find('{', end);
    if (end == std::string::npos) {
      end = t_.size();
      break;
    }
    const char next = end + 1 < t_.size() ? t_[end + 1] : '\0';
    if (next == '%' || next == '{' || next == '#') break;
    ++end;
  }
  if (end == pos_) return false;
  push(Tok::Text, t_.substr(pos_, end - pos_), pos_);
  pos_ = end;
  return true;
}

bool Lexer::open_or_comment() {
  if (t_[pos_] != '{' || pos_ + 1 >= t_.size()) return false;
  const char next = t_[pos_ + 1];
  if (next == '#') {
    const size_t start = pos_;
    pos_ += 2;
    const bool strip_before = pos_ < t_.size() && t_[pos_] == '-';
    if (strip_before) ++pos_;
    const size_t end = t_.find("#}", pos_);
    if (end == std::string::npos) fail(start, "unterminated comment: missing '#}'");
    std::string comment = t_.substr(pos_, end - pos_);
    const bool strip_after = !comment.empty() && comment.back() == '-';
    if (strip_after) comment.pop_back();
    if (strip_before) strip_trailing_text_space();
    push(Tok::Comment, std::move(comment), start);
    pos_ = end + 2;
    if (strip_after) skip_leading_space();
    return true;
  }
  if (pos_ + 2 < t_.size() && t_[pos_ + 2] == '-' && (next == '%' || next == '{')) {
    strip_trailing_text_space();
    push(next == '%' ? Tok::OpenStmt : Tok::OpenExpr, next == '%' ? "{%" : "{{", pos_);
    if (next == '{') curly_depth_ = 0;
    pos_ += 3;
    return true;
  }
  return false;
}

bool Lexer::close_with_dash() {
  if (t_[pos_] != '-' || pos_ + 2 >= t_.size() || t_[pos_ + 2] != '}') return false;
  const char next = t_[pos_ + 1];
  if (next != '%' && next != '}') return false;
  push(next == '%' ? Tok::CloseStmt : Tok::CloseExpr, next == '%' ? "%}" : "}}", pos_);
  pos_ += 3;
  skip_leading_space();
  return true;
}

// A sign after an operator (or an opening bracket) is unary; digits after it make a literal.
bool Lexer::sign() {
  const char c = t_[pos_];
  if (c != '-' && c != '+') return false;
  if (tokens_.empty() || last_is(Tok::Text)) fail(pos_, std::string("unexpected character '") + c + "'");
  switch (tokens_.back().type) {
    case Tok::Ident:
    case Tok::Number:
    case Tok::String:
    case Tok::RParen:
    case Tok::RBracket: return false;  // binary operator
    default: break;
  }
  const size_t start = pos_++;
  std::string num = digits();
  if (!num.empty() && pos_ + 1 < t_.size() && t_[pos_] == '.' && is_digit(t_[pos_ + 1])) {
    ++pos_;
    num += '.';
    num += digits();
  }
  std::string text(1, c);
  text += num;
  push(num.empty() ? Tok::Unary : Tok::Number, std::move(text), start);
  return true;
}

bool Lexer::rule() {
  for (const Rule& r : kRules) {
    const std::string_view seq(r.seq);
    if (r.type == Tok::CloseExpr && curly_depth_ > 0) continue;
    if (t_.compare(pos_, seq.size(), seq) != 0) continue;
    push(r.type, std::string(seq), pos_);
    if (r.type == Tok::OpenExpr) curly_depth_ = 0;
    if (r.type == Tok::LBrace) ++curly_depth_;
    if (r.type == Tok::RBrace) --curly_depth_;
    pos_ += seq.size();
    return true;
  }
  return false;
}

std::string Lexer::digits() {
  const size_t start = pos_;
  while (pos_ < t_.size() && is_digit(t_[pos_])) ++pos_;
  if (pos_ >= t_.size() && pos_ > start) fail(start, "unexpected end of template inside a tag");
  return t_.substr(start, pos_ - start);
}

int hex_value(const std::string& s) {
  int v = 0;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return -1;
    v = v * 16 + (is_digit(c) ? c - '0' : std::tolower(c) - 'a' + 10);
  }
  return v;
}

void Lexer::string_literal(char quote) {
  const size_t start = pos_++;
  std::string out;
  while (true) {
    if (pos_ >= t_.size()) fail(start, "unterminated string literal");
    const char c = t_[pos_];
    if (c == quote) break;
    ++pos_;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (pos_ >= t_.size()) fail(start, "unterminated string literal");
    const char e = t_[pos_++];
    if (e == 'x' || e == 'u') {
      const size_t n = e == 'x' ? 2 : 4;
      const std::string hex = t_.substr(pos_, n);
      int v = hex.size() == n ? hex_value(hex) : -1;
      if (v < 0) fail(pos_, std::string("invalid hexadecimal escape sequence: \\") + e + hex);
      pos_ += n;
      if (v >= 0xd800 && v <= 0xdbff && t_.compare(pos_, 2, "\\u") == 0) {  // surrogate pair
        const int lo = hex_value(t_.substr(pos_ + 2, 4));
        if (lo >= 0xdc00 && lo <= 0xdfff) {
          v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
          pos_ += 6;
        }
      }
      append_utf8(out, (v >= 0xd800 && v <= 0xdfff) ? 0xfffd : static_cast<uint32_t>(v));
      continue;
    }
    switch (e) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      default: fail(pos_ - 1, std::string("unexpected escaped character: ") + e);
    }
  }
  ++pos_;  // closing quote
  push(Tok::String, std::move(out), start);
}

}  // namespace

std::vector<Token> tokenize(std::string_view source) {
  Lexer lexer(preprocess(source));
  return lexer.run();
}

const char* token_name(Tok t) {
  switch (t) {
    case Tok::Text: return "text";
    case Tok::Number: return "number";
    case Tok::String: return "string";
    case Tok::Ident: return "name";
    case Tok::Equals: return "'='";
    case Tok::LParen: return "'('";
    case Tok::RParen: return "')'";
    case Tok::OpenStmt: return "'{%'";
    case Tok::CloseStmt: return "'%}'";
    case Tok::OpenExpr: return "'{{'";
    case Tok::CloseExpr: return "'}}'";
    case Tok::LBracket: return "'['";
    case Tok::RBracket: return "']'";
    case Tok::LBrace: return "'{'";
    case Tok::RBrace: return "'}'";
    case Tok::Comma: return "','";
    case Tok::Dot: return "'.'";
    case Tok::Colon: return "':'";
    case Tok::Pipe: return "'|'";
    case Tok::Additive: return "additive operator";
    case Tok::Multiplicative: return "multiplicative operator";
    case Tok::Power: return "'**'";
    case Tok::Comparison: return "comparison operator";
    case Tok::Unary: return "unary operator";
    case Tok::Comment: return "comment";
  }
  return "token";
}

}  // namespace lowbit::jinja
