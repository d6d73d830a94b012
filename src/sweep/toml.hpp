// Internal: the one way dalesim includes and calls toml++ (3.3.0 in Debian 12), working around
// two of its bugs that malformed sweep files reach:
// - it checks preconditions of its own parser with assertions, and a table header whose '[' is
//   followed by a character that cannot start a key ("[#", "[\n", "[[=") fails one: an abort in
//   debug builds, undefined behaviour (__builtin_assume of a false condition) in optimised clang
//   builds. Here every such check throws TomlCheckFailed instead.
// - its test "is this non-ASCII character whitespace?" reaches __builtin_unreachable for most
//   code points (undefined behaviour in every build; toml++ issues #190 and #295), and the parser
//   asks it of any non-ASCII character outside strings and comments, and of the first character
//   after a line-ending backslash in a multi-line string. parse_toml refuses such text first.
// Every file using toml++ includes it through this header, so that all see the same inline
// definitions.
#pragma once

#include <stdexcept>
#include <string>

namespace dalesim {

// A failed internal check of toml++ (its message is the condition that failed).
class TomlCheckFailed : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Throws TomlCheckFailed; a function, not a throw expression, because some of the checks sit in
// noexcept functions of toml++, where a failure then ends the program (as an abort would).
[[noreturn]] inline void toml_check_failed(const char* condition) {
  throw TomlCheckFailed(std::string("toml++ check failed: ") + condition);
}

}  // namespace dalesim

#ifdef TOML_ASSERT
#error "include toml++ only through sweep/toml.hpp"
#endif
// toml++ turns its checks into assumptions under NDEBUG: keep them checks while it is included.
#ifdef NDEBUG
#define DALESIM_TOML_RESTORE_NDEBUG
#undef NDEBUG
#endif
#define TOML_ASSERT(expr) (static_cast<bool>(expr) ? static_cast<void>(0) : ::dalesim::toml_check_failed(#expr))
#include <toml++/toml.h>
#ifdef DALESIM_TOML_RESTORE_NDEBUG
#define NDEBUG
#undef DALESIM_TOML_RESTORE_NDEBUG
#endif

namespace dalesim {

// Parses TOML text; `origin` names it in messages. Every syntax error, including the input that
// toml++ cannot handle safely (above), is a ConfigError with the line and column where known.
toml::table parse_toml(const std::string& text, const std::string& origin);

}  // namespace dalesim
