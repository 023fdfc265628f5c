#include "server/auth.h"

#include <fstream>

#include "util/error.h"

namespace nucleus::server {

bool bearer_matches(const std::string& authorization, const std::string& key) {
  const std::string expected = "Bearer " + key;
  // Fold every byte's difference in; the length is not secret.
  unsigned diff = authorization.size() == expected.size() ? 0u : 1u;
  for (size_t i = 0; i < expected.size(); ++i) {
    const char a = i < authorization.size() ? authorization[i] : '\0';
    diff |= static_cast<unsigned char>(a ^ expected[i]);
  }
  return diff == 0 && !key.empty();
}

std::string read_api_key_file(const std::string& path) {
  std::ifstream in(path);
  check(in.good(), "--api-key-file: cannot read " + path);
  std::string line;
  std::getline(in, line);
  const size_t b = line.find_first_not_of(" \t\r\n");
  const size_t e = line.find_last_not_of(" \t\r\n");
  check(b != std::string::npos, "--api-key-file: " + path + " holds no key on its first line");
  return line.substr(b, e - b + 1);
}

}  // namespace nucleus::server
