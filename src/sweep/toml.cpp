// Parsing TOML with toml++ safely: refuses first the text its character tests mishandle, and
// turns every failure into a ConfigError (see sweep/toml.hpp for the two toml++ bugs).
#include "sweep/toml.hpp"

#include <cstddef>

#include "dalesim/config.hpp"

namespace dalesim {

namespace {

struct Spot {
  int line = 0, column = 0;  // 1-based; line 0: nothing found
  const char* what = "";
};

// Not valid TOML after a backslash that escapes it, valid after a line-ending one; the TOML
// library misreads both.
const char* const kAfterBackslash =
    "a non-ASCII character after a backslash in a string, or first after a line-ending backslash "
    "(the TOML library misreads it; write it as \\uXXXX)";

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// The first non-ASCII character toml++ would ask "whitespace?" about. A lexical scan: strings
// (basic, literal, multi-line) and comments may hold any character; elsewhere TOML allows only
// ASCII, so refusing a non-ASCII character there refuses only invalid TOML. The scan need only
// agree with toml++ up to the first error toml++ reports, since it reads no further. Inside basic strings
// toml++ also asks it of the character after a backslash (and after the blanks following one):
// invalid TOML too, except where a line-ending backslash is followed by a non-ASCII character.
Spot find_unsafe_non_ascii(const std::string& s) {
  enum class In { code, comment, basic, literal, ml_basic, ml_literal };
  In in = In::code;
  // Outside strings: inside a bare token (toml++ reads a value such as `2a"..."` to its end, so a
  // quote there opens nothing), on the value side of '=', and the open [ and { brackets.
  bool token = false, in_value = false;
  std::string brackets;
  const std::size_t n = s.size();
  int line = 1, column = 0;
  std::size_t i = s.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;  // toml++ skips a UTF-8 BOM
  auto opens = [&](std::size_t k, char q) { return k + 2 < n && s[k] == q && s[k + 1] == q && s[k + 2] == q; };
  while (i < n) {
    const char c = s[i];
    const bool ascii = static_cast<unsigned char>(c) < 0x80;
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++column;  // columns count code points
    if (c == '\n') {
      ++line, column = 0;
      if (in == In::comment || in == In::basic || in == In::literal) in = In::code;  // single-line forms end
      if (in == In::code) {
        token = false;
        if (brackets.empty()) in_value = false;  // only arrays span lines
      }
      ++i;
      continue;
    }
    switch (in) {
      case In::code:
        if (!ascii) return {line, column,
                       "a non-ASCII character outside a string or comment; keys without quotes are ASCII "
                       "letters, digits, '_' and '-'"};
        if (c == '#') {
          in = In::comment;
        } else if ((c == '"' || c == '\'') && !token) {  // a string starts where a key or value does
          if (opens(i, c)) {
            in = c == '"' ? In::ml_basic : In::ml_literal;
            i += 3, column += 2;
            continue;
          }
          in = c == '"' ? In::basic : In::literal;
        } else if (is_blank(c) || c == '\r') {
          token = false;
        } else if (c == '=' && !(in_value && token)) {  // inside a bare value, '=' is one more character:
          token = false, in_value = true;                // toml++ reads it to a terminator (space , ] } #)
        } else if ((c == '[' || c == '{') && !token) {
          brackets += c;
          if (c == '{') in_value = false;  // keys follow
        } else if (c == ']' || c == '}' || c == ',') {
          token = false;
          const char open = brackets.empty() ? '\0' : brackets.back();
          if (c == ',' && open == '{') in_value = false;
          if (c != ',' && open) {
            brackets.pop_back();
            if (open == '{') in_value = true;  // the inline table was a value
          }
        } else if (c == '.' && !in_value) {
          token = false;  // between the parts of a dotted key
        } else {
          token = true;
        }
        break;
      case In::comment:
        break;
      case In::basic:
        if (c == '\\' && i + 1 < n && static_cast<unsigned char>(s[i + 1]) >= 0x80)
          return {line, column + 1, kAfterBackslash};
        if (c == '\\' && i + 1 < n && s[i + 1] != '\n') {
          i += 2, ++column;  // an escape: \" does not end the string
          continue;
        }
        if (c == '"') in = In::code;
        break;
      case In::literal:
        if (c == '\'') in = In::code;
        break;
      case In::ml_basic:
      case In::ml_literal: {
        const char q = in == In::ml_basic ? '"' : '\'';
        if (in == In::ml_basic && c == '\\') {
          std::size_t k = i + 1;
          while (k < n && is_blank(s[k])) ++k;
          if (k < n && static_cast<unsigned char>(s[k]) >= 0x80)
            return {line, column + 1 + static_cast<int>(k - i - 1), kAfterBackslash};
          if (k < n && (s[k] == '\n' || s[k] == '\r')) {
            // A line-ending backslash: toml++ skips whitespace and newlines, testing each one.
            for (; k < n && (is_blank(s[k]) || s[k] == '\n' || s[k] == '\r'); ++k)
              s[k] == '\n' ? (++line, column = 0) : ++column;
            if (k < n && static_cast<unsigned char>(s[k]) >= 0x80) return {line, column + 1, kAfterBackslash};
            i = k;
            continue;
          }
          if (i + 1 < n && s[i + 1] != '\n') ++i, ++column;  // an escape
        } else if (opens(i, q)) {
          i += 3, column += 2;
          for (int extra = 0; extra < 2 && i < n && s[i] == q; ++extra) ++i, ++column;  // """"" ends with 2 quotes of content
          in = In::code;
          continue;
        }
        break;
      }
    }
    ++i;
  }
  return {};
}

}  // namespace

toml::table parse_toml(const std::string& text, const std::string& origin) {
  if (const Spot spot = find_unsafe_non_ascii(text); spot.line > 0)
    throw ConfigError(origin + ":" + std::to_string(spot.line) + ":" + std::to_string(spot.column), "",
                      "valid TOML syntax", spot.what);
  try {
    return toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    const auto& p = e.source().begin;
    throw ConfigError(origin + ":" + std::to_string(p.line) + ":" + std::to_string(p.column), "", "valid TOML syntax",
                      std::string(e.description()));
  } catch (const TomlCheckFailed& e) {
    // toml++ gives no position here; the known case is a table header without a key.
    throw ConfigError(origin, "", "valid TOML syntax",
                      std::string("malformed TOML, e.g. a table header '[' not followed by a key (") + e.what() + ")");
  }
}

}  // namespace dalesim
