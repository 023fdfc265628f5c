#pragma once
// API keys: `Authorization: Bearer KEY` on every endpoint except /health.
#include <string>

namespace nucleus::server {

// True when `authorization` (the header's value) is "Bearer <key>". The
// comparison takes the same time wherever the first difference is.
bool bearer_matches(const std::string& authorization, const std::string& key);

// The key in a file: its first line, surrounding whitespace removed. Throws
// nucleus::Error when the file cannot be read or the key is empty.
std::string read_api_key_file(const std::string& path);

}  // namespace nucleus::server
