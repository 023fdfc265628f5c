#pragma once
// Whole small text files (configs, tokenizer JSON, templates) read at load
// time, with one error wording everywhere.
#include <nlohmann/json.hpp>
#include <string>

namespace nucleus {

// The file's bytes; throws Error "<path>: cannot open" / "<path>: read error".
std::string read_text_file(const std::string& path);

// The file parsed as JSON; throws Error "<path>: not valid JSON: ..." too.
nlohmann::json read_json_file(const std::string& path);

}  // namespace nucleus
