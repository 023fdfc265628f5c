// KV memory and time per decode step of beam search, shared blocks (fork +
// copy-on-write, the default) against a full private copy of every beam's
// cache each step (GenerateRequest::beam_full_copy, what reordering a dense
// per-beam cache costs, as HF's reorder_cache does). Prints a table.
//
//   beam_kv_bench [--quick] [path/to/stories260K.gguf]   (default: models/stories260K.gguf,
//   so run it from the repository root)
//
// Models: the bundled stories260K, and a random F32 model with TinyLlama-1.1B's
// KV shape (22 layers, 4 KV heads of 64, so 45 KiB of K+V per position) but a
// hidden size of 512 instead of 2048 so it runs on a small CPU box: the KV
// numbers are TinyLlama's, the compute per step about 1/7 of it.
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "formats/model_file.h"
#include "generate/generator.h"
#include "runtime/engine.h"

namespace nucleus {
namespace {

std::shared_ptr<const Model> random_model(const ModelConfig& c, uint32_t seed) {
  auto file = std::make_shared<ModelFile>();
  file->config = c;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uni(-0.05f, 0.05f);
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool ones) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    auto buf = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(n) * 4);
    float* f = reinterpret_cast<float*>(buf->data());
    for (int64_t i = 0; i < n; ++i) f[i] = ones ? 1.0f : uni(rng);
    TensorView t;
    t.name = name;
    t.type = DType::F32;
    t.shape = shape;
    t.data = buf->data();
    t.nbytes = buf->size();
    file->tensors[name] = t;
    file->owned.push_back(buf);
  };
  add("token_embd.weight", {c.dim, c.vocab_size}, false);
  add("output_norm.weight", {c.dim}, true);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", {c.dim}, true);
    add(p + "ffn_norm.weight", {c.dim}, true);
    add(p + "attn_q.weight", {c.dim, c.q_dim()}, false);
    add(p + "attn_k.weight", {c.dim, c.kv_dim()}, false);
    add(p + "attn_v.weight", {c.dim, c.kv_dim()}, false);
    add(p + "attn_output.weight", {c.q_dim(), c.dim}, false);
    add(p + "ffn_gate.weight", {c.dim, c.ffn_dim}, false);
    add(p + "ffn_up.weight", {c.dim, c.ffn_dim}, false);
    add(p + "ffn_down.weight", {c.ffn_dim, c.dim}, false);
  }
  return std::make_shared<const Model>(file);
}

void measure(const char* name, std::shared_ptr<const Model> model, int64_t prompt_len,
             int64_t n_new, int64_t nb) {
  std::vector<int32_t> prompt(static_cast<size_t>(prompt_len));
  for (int64_t i = 0; i < prompt_len; ++i)
    prompt[static_cast<size_t>(i)] =
        static_cast<int32_t>(1 + (i * 7919) % (model->config().vocab_size - 1));
  for (bool full_copy : {false, true}) {
    EngineOptions o;
    o.threads = 2;
    o.max_sequences = 3 * nb + 1;
    o.context_length = prompt_len + n_new + 16;
    Engine e(model, o);
    GenerateRequest r;
    r.prompt = prompt;
    r.config.num_beams = nb;
    r.config.num_return_sequences = 1;
    r.config.max_new_tokens = n_new;
    r.config.min_new_tokens = n_new;  // EOS suppressed: every run takes n_new steps
    r.config.eos_token_ids = {0};
    r.beam_full_copy = full_copy;
    const GenerateResult res = generate(e, nullptr, r);
    const int64_t steps = res.decode.tokens / nb;
    const double peak_mib =
        static_cast<double>(res.kv_peak_blocks * res.kv_bytes_per_block) / (1024.0 * 1024.0);
    const double final_mib =
        static_cast<double>(nb * (prompt_len + n_new - 1) * model->config().n_layers * 2 *
                            model->config().kv_dim() * 4) /
        (1024.0 * 1024.0);
    std::printf("| %-22s | %6lld | %-11s | %8.2f | %10.2f | %9.2f |\n", name,
                static_cast<long long>(prompt_len), full_copy ? "full copy" : "shared", peak_mib,
                final_mib, steps > 0 ? res.decode.seconds * 1e3 / static_cast<double>(steps) : 0.0);
    std::fflush(stdout);
  }
}

}  // namespace
}  // namespace nucleus

int main(int argc, char** argv) try {
  using namespace nucleus;
  bool quick = false;
  std::string stories_path = "models/stories260K.gguf";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else {
      stories_path = argv[i];
    }
  }
  const int64_t nb = 4, n_new = 16;
  std::printf(
      "num_beams %lld, %lld new tokens; peak = most KV blocks in use x block bytes;\n"
      "dense = num_beams x positions x per-position K+V (a dense per-beam cache)\n\n",
      static_cast<long long>(nb), static_cast<long long>(n_new));
  std::printf(
      "| model                  | prompt | KV          | peak MiB | dense MiB  | ms/step   |\n");
  std::printf("|---|---|---|---|---|---|\n");
  auto stories = std::make_shared<const Model>(
      std::make_shared<const ModelFile>(load_model_file(stories_path)));
  for (int64_t p : {64, 256, 480}) measure("stories260K", stories, p, n_new, nb);
  ModelConfig c;
  c.format = "random";
  c.dim = 512;
  c.n_layers = 22;
  c.n_heads = 8;
  c.n_kv_heads = 4;
  c.head_dim = 64;
  c.ffn_dim = 1408;
  c.vocab_size = 32000;
  c.context_length = 4096;
  c.tied_embeddings = true;
  auto tl = random_model(c, 1);
  const std::vector<int64_t> contexts =
      quick ? std::vector<int64_t>{128} : std::vector<int64_t>{128, 512, 1024};
  for (int64_t p : contexts) measure("TinyLlama-KV (dim 512)", tl, p, n_new, nb);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
