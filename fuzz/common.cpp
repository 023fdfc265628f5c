#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "fuzz/targets.h"
#include "util/error.h"

namespace nucleus::fuzz {

std::vector<std::string> split_parts(Input in, size_t parts) {
  const std::string_view s(reinterpret_cast<const char*>(in.data()), in.size());
  std::vector<std::string> out;
  size_t pos = 0;
  while (out.size() + 1 < parts) {
    const size_t at = s.find(kSeparator, pos);
    if (at == std::string_view::npos) break;
    out.emplace_back(s.substr(pos, at - pos));
    pos = at + kSeparator.size();
  }
  out.emplace_back(s.substr(std::min(pos, s.size())));
  out.resize(parts);
  return out;
}

const std::string& scratch_dir() {
  // One directory per process: parallel fuzzer jobs must not share files.
  static const std::string dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/nucleus-fuzz-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) invariant_failed("cannot create a scratch directory");
    return tmpl;
  }();
  return dir;
}

void write_file(const std::string& path, std::string_view bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) invariant_failed("cannot write a scratch file");
}

void invariant_failed(const char* what) {
  std::fprintf(stderr, "fuzz invariant failed: %s\n", what);
  std::abort();
}

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {
      {"gguf", gguf},
      {"safetensors", safetensors},
      {"hf_checkpoint", hf_checkpoint},
      {"llama2c", llama2c},
      {"tokenizer_json", tokenizer_json},
      {"encode", encode},
      {"detokenize", detokenize},
      {"jinja", jinja},
      {"generation_config", generation_config},
      {"gguf_chat_template", gguf_chat_template},
      {"openai_request", openai_request},
  };
  return all;
}

}  // namespace nucleus::fuzz
