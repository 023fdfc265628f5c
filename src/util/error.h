#pragma once
// One error mechanism for the whole engine: throw nucleus::Error with a message
// that names the file, field and value; front ends catch it at their boundary
// and print it as one line.
#include <stdexcept>
#include <string>

namespace nucleus {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Throws Error(message) when cond is false; keeps checks on hostile input terse.
// A literal message costs nothing when the check passes; a message built with
// `+` is built every time, so per-token code writes `if (!cond) throw Error(...)`.
inline void check(bool cond, const char* message) {
  if (!cond) throw Error(message);
}
inline void check(bool cond, const std::string& message) {
  if (!cond) throw Error(message);
}

}  // namespace nucleus
