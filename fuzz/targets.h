#pragma once
// Fuzz targets: one function per input surface, each taking one fuzzer input.
// A nucleus::Error is the expected answer to bad input and is swallowed here;
// anything else escapes (another exception type, a sanitizer report, a
// failed invariant, which abort()s) and is a defect. The same functions run
// under libFuzzer (fuzz/libfuzzer_main.cpp, clang only) and in the g++ replay
// test of tests/data/fuzz/<target>/ (tests/fuzz_replay_test.cpp).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nucleus::fuzz {

using Input = std::span<const uint8_t>;

void gguf(Input in);                // GGUF bytes -> metadata, vocab, model, tokenizer
void safetensors(Input in);         // safetensors bytes -> tensors
void hf_checkpoint(Input in);       // config.json | model.safetensors -> model
void llama2c(Input in);             // model .bin | tokenizer.bin -> model, tokenizer
void tokenizer_json(Input in);      // tokenizer.json | text -> encode, decode
void encode(Input in);              // vocab selector byte, text -> real vocabularies
void detokenize(Input in);          // vocab selector byte, int32 ids -> streaming text
void jinja(Input in);               // messages selector byte, template source -> render
void generation_config(Input in);   // generation_config.json -> GenerationConfig, chain
void gguf_chat_template(Input in);  // GGUF bytes -> tokenizer.chat_template -> render
void openai_request(Input in);      // endpoint byte, HTTP body -> OpenAI request translation

// Loads what a target keeps between inputs (the real vocabularies of encode
// and detokenize) before fuzzing starts, so that the one-time load of a 6 MB
// tokenizer.json is not mistaken for a slow input.
void warm_up(std::string_view target);

struct Target {
  const char* name;
  void (*run)(Input);
};
// Every target, by the name used for its corpus directories.
const std::vector<Target>& targets();

// Multi-file inputs are parts joined by this separator (seeds use it, the
// dictionaries name it, so mutations keep the shape).
inline constexpr std::string_view kSeparator = "\n--nucleus-part--\n";
// Splits at the first `parts - 1` separators; missing parts are empty.
std::vector<std::string> split_parts(Input in, size_t parts);

// A private temporary directory per process (file-based readers need paths);
// files written there are overwritten by the next input.
const std::string& scratch_dir();
void write_file(const std::string& path, std::string_view bytes);

// Failed invariants (not bad input): print and abort so both the fuzzer and
// the replay test report them.
[[noreturn]] void invariant_failed(const char* what);

}  // namespace nucleus::fuzz
