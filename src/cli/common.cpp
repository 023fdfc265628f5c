#include "cli/common.h"

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "formats/hf_checkpoint.h"
#include "tokenizer/hf_tokenizer.h"
#include "util/error.h"

namespace nucleus::cli {

void ModelOptions::add_to(CLI::App* app) {
  app->add_option("-m,--model", model,
                  "model: .gguf file, llama2.c .bin, or Hugging Face checkpoint directory "
                  "(tokenize/detokenize also take a tokenizer.json or a directory holding one; "
                  "default: the bundled stories260K.gguf)");
  app->add_option("--tokenizer", tokenizer,
                  "llama2.c tokenizer.bin (default: tokenizer.bin beside the model)");
  app->add_option("-t,--threads", threads, "worker threads (default: all cores)")
      ->check(CLI::Range(0, 1024));
  app->add_option("--quantize", quantize,
                  "convert the weight matrices at load time (q8_0, q4_0, f16, bf16)");
}

void ModelOptions::add_kv_type_to(CLI::App* app) {
  app->add_option("--kv-type", kv_type,
                  "element type of the KV cache: f32 (default), f16 or q8_0 (attention reads it "
                  "as stored; see docs/ARCHITECTURE.md for the accuracy each costs)");
  // Beside --kv-type: every command that runs the engine takes both.
  app->add_option("--bf16-dot", bf16_dot,
                  "BF16 weights through the BF16 dot product (activations rounded to BF16): "
                  "auto (default: on AMD Zen 4 and later, whose vdpbf16ps outruns their F32 FMA; "
                  "otherwise off), off (F32-widening), on (AVX2 emulation without AVX512_BF16)")
      ->check(CLI::IsMember({"auto", "on", "off"}));
}

std::string ModelOptions::model_path() const {
  return model.empty() ? std::string(NUCLEUS_DEFAULT_MODEL) : model;
}

int ModelOptions::thread_count() const {
  if (threads > 0) return threads;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

const Tokenizer& LoadedModel::need_tokenizer() const {
  check(tokenizer != nullptr, "this model has no tokenizer; pass token ids (--tokens) instead");
  return *tokenizer;
}

namespace {
// tokenize/detokenize need no weights: a bare tokenizer.json, or a directory
// holding one (a full checkpoint or just the tokenizer files), is read as a
// tokenizer alone.
bool hf_tokenizer_only(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return fs::is_regular_file(fs::path(path) / "tokenizer.json", ec);
  return fs::path(path).extension() == ".json" && fs::is_regular_file(path, ec);
}
}  // namespace

LoadedModel load_model(const ModelOptions& opts, LoadDepth depth) {
  if (depth == LoadDepth::kVocab && hf_tokenizer_only(opts.model_path())) {
    LoadedModel m;
    m.file = std::make_shared<const ModelFile>();
    m.tokenizer = load_hf_tokenizer(opts.model_path());
    return m;
  }
  LoadOptions lo;
  lo.tokenizer_path = opts.tokenizer;
  lo.vocab_only = depth == LoadDepth::kVocab;
  LoadedModel m;
  auto file = std::make_shared<ModelFile>(load_model_file(opts.model_path(), lo));
  if (!opts.quantize.empty() && depth == LoadDepth::kModel)
    quantize_weights(*file, parse_dtype(opts.quantize));
  m.file = file;
  if (depth == LoadDepth::kModel) m.model = std::make_shared<const Model>(m.file);
  if (!m.file->vocab.empty()) {
    m.tokenizer = make_tokenizer(m.file->vocab);
  } else {
    // Hugging Face checkpoints keep their tokenizer in tokenizer.json.
    for (const auto& [key, value] : m.file->metadata)
      if (key == "hf.tokenizer_json") m.tokenizer = load_hf_tokenizer(value);
  }
  return m;
}

DType layer_weight_type(const ModelFile& file) {
  if (const TensorView* q = file.find("blk.0.attn_q.weight")) return q->type;
  DType t = DType::F32;
  int64_t most = -1;
  for (const auto& [name, view] : file.tensors) {
    if (view.shape.size() < 2) continue;
    if (view.numel() > most) {
      most = view.numel();
      t = view.type;
    }
  }
  return t;
}

void report_written(const std::string& path, DType type, std::chrono::steady_clock::time_point t0) {
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  std::fprintf(stderr, "wrote %s (%.1f MiB, %s) in %.2f s\n", path.c_str(),
               static_cast<double>(size) / (1024.0 * 1024.0), dtype_name(type), secs);
}

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
    if (i == text.size()) break;
    int64_t v = 0;
    const char* begin = text.data() + i;
    auto [end, ec] = std::from_chars(begin, text.data() + text.size(), v);
    check(ec == std::errc() && end != begin,
          "invalid token id list '" + text + "' (expected comma-separated integers)");
    check(v >= INT32_MIN && v <= INT32_MAX, "token id " + std::to_string(v) + " is out of range");
    ids.push_back(static_cast<int32_t>(v));
    i = static_cast<size_t>(end - text.data());
    check(i == text.size() || text[i] == ',' || text[i] == ' ',
          "invalid token id list '" + text + "' (expected comma-separated integers)");
  }
  return ids;
}

}  // namespace nucleus::cli
