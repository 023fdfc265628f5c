// `nucleus convert`: an HF checkpoint directory (or a synthetic random model)
// to a GGUF file.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/common.h"
#include "formats/gguf.h"
#include "formats/gguf_convert.h"
#include "formats/hf_checkpoint.h"
#include "formats/hf_vocab.h"
#include "util/error.h"

namespace nucleus::cli {

namespace {

struct ConvertArgs {
  std::string input;
  std::string output;
  std::string type = "f32";
  std::string random;
  uint64_t seed = 0;
  std::string vocab_from;
  std::string name;
  bool no_vocab = false;
  int threads = 0;
};

std::string meta(const ModelFile& m, const std::string& key) {
  for (const auto& [k, v] : m.metadata)
    if (k == key) return v;
  return "";
}

// A vocabulary from a SentencePiece-BPE tokenizer.json or from a GGUF file.
Vocab vocab_from(const std::string& path);

// tokenizer_config.json beside a tokenizer.json supplies bos/eos and add_bos.
std::string config_beside(const std::string& tokenizer_json) {
  const auto p = std::filesystem::path(tokenizer_json).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec) ? p.string() : std::string();
}

Vocab vocab_from(const std::string& path) {
  if (path.ends_with(".gguf")) return read_gguf_vocab(path);
  return read_vocab_from_tokenizer_json(path, config_beside(path));
}

int run_convert(const ConvertArgs& a) {
  GgufConvertOptions opt;
  opt.type = parse_dtype(a.type);
  opt.name = a.name;
  opt.threads = a.threads;
  const auto t0 = std::chrono::steady_clock::now();

  if (!a.random.empty()) {
    check(a.input.empty(), "convert: give either an input directory or --random, not both");
    const RandomModelSpec spec = parse_random_spec(a.random);
    std::unique_ptr<Vocab> vocab;
    if (!a.vocab_from.empty()) vocab = std::make_unique<Vocab>(vocab_from(a.vocab_from));
    write_random_gguf(spec, a.output, opt, a.seed, vocab.get());
  } else {
    check(!a.input.empty(), "convert: missing input checkpoint directory (or --random SHAPE)");
    ModelFile model = load_hf_checkpoint(a.input);
    if (opt.name.empty()) opt.name = std::filesystem::path(a.input).filename().string();
    if (opt.name.empty())
      opt.name = std::filesystem::path(a.input).parent_path().filename().string();
    const std::string tok = !a.vocab_from.empty() ? a.vocab_from : meta(model, "hf.tokenizer_json");
    if (!a.no_vocab) {
      check(!tok.empty(), a.input + ": no tokenizer.json (give --vocab-from FILE or --no-vocab)");
      model.vocab = vocab_from(tok);
    }
    write_gguf(model, a.output, opt);
  }
  report_written(a.output, opt.type, t0);
  return 0;
}

}  // namespace

Command add_convert(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* sub = app.add_subcommand(
      "convert", "convert a Hugging Face checkpoint directory (or a random model) to GGUF");
  sub->add_option("input", args->input, "HF checkpoint directory (config.json + safetensors)");
  sub->add_option("-o,--output", args->output, "output .gguf file")->required();
  sub->add_option("--type", args->type, "type of 2-D weights: f32, f16, bf16, q8_0, q4_0")
      ->capture_default_str();
  sub->add_option("--random", args->random,
                  "write a random model instead: tinyllama-1.1b, llama-7b, llama3-8b or "
                  "dim=..,layers=..,heads=..,kv_heads=..,ffn=..,vocab=..,ctx=..");
  sub->add_option("--seed", args->seed, "seed of the random weights")->capture_default_str();
  sub->add_option(
      "--vocab-from", args->vocab_from,
      "vocabulary source: a tokenizer.json (SentencePiece-BPE or byte-level BPE) or a .gguf file");
  sub->add_option("--name", args->name, "general.name (default: the directory's name)");
  sub->add_flag("--no-vocab", args->no_vocab, "write no tokenizer metadata");
  sub->add_option("-t,--threads", args->threads, "threads (0 = all)")->capture_default_str();
  return Command{sub, [args] { return run_convert(*args); }};
}

}  // namespace nucleus::cli
