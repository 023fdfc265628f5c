#include "cost/cost.h"

#include <algorithm>
#include <cctype>

#include "util/error.h"

namespace nucleus::cost {
namespace {

constexpr double kKvElemBytes = 4;   // the KV cache is f32
constexpr double kNormFlops = 4;     // per element: square+accumulate, scale, weight
constexpr double kRopeFlops = 3;     // per rotated element: (4 mul + 2 add) per pair
constexpr double kSoftmaxFlops = 5;  // per score: scale, subtract max, exp, sum, normalise
constexpr double kSwigluFlops = 5;   // per hidden element: negate, exp, add, divide, multiply

void check_shape(const ModelConfig& cfg) {
  cfg.validate();
}

void check_positive(int64_t v, const char* what) {
  check(v > 0, std::string("cost: ") + what + " must be positive, got " + std::to_string(v));
}

// Matrix FLOPs, remainder and bytes shared by prefill and decode: `rows` query
// rows per sequence whose attention spans sum to `attended` positions
// (Σ over the rows of the positions each attends to).
PhaseCost forward_cost(const ModelConfig& cfg, DType dtype, int64_t batch, int64_t rows,
                       double attended, int64_t logits_rows, int64_t kv_positions_after) {
  const double b = static_cast<double>(batch);
  const double n = b * static_cast<double>(rows);  // token rows in the pass
  const double h = static_cast<double>(cfg.dim);
  const double q = static_cast<double>(cfg.q_dim());
  const double kv = static_cast<double>(cfg.kv_dim());
  const double f = static_cast<double>(cfg.ffn_dim);
  const double L = static_cast<double>(cfg.n_layers);
  const double heads = static_cast<double>(cfg.n_heads);
  const double hd = static_cast<double>(cfg.head_dim);
  const double logit_rows = b * static_cast<double>(logits_rows);

  PhaseCost c;
  c.attn_q = L * 2 * n * h * q;
  c.attn_k = L * 2 * n * h * kv;
  c.attn_v = L * 2 * n * h * kv;
  c.attn_o = L * 2 * n * q * h;
  c.attn_qk = L * b * heads * 2 * hd * attended;
  c.attn_av = L * b * heads * 2 * hd * attended;
  c.mlp_gate = L * 2 * n * h * f;
  c.mlp_up = L * 2 * n * h * f;
  c.mlp_down = L * 2 * n * f * h;
  c.lm_head = 2 * logit_rows * h * static_cast<double>(cfg.vocab_size);

  double per_row_layer = 2 * kNormFlops * h + kRopeFlops * (q + kv) + kSwigluFlops * f + 2 * h;
  if (cfg.attn_bias) per_row_layer += q + 2 * kv;
  if (cfg.mlp_bias) per_row_layer += 2 * f + h;
  c.remainder = L * n * per_row_layer + L * b * heads * kSoftmaxFlops * attended +
                logit_rows * kNormFlops * h;  // the final norm, only where logits are needed

  c.total = c.attention_projections() + c.attention_scores() + c.mlp() + c.lm_head + c.remainder;

  const int64_t per_layer_bytes =
      matrix_bytes(dtype, cfg.q_dim(), cfg.dim) + 2 * matrix_bytes(dtype, cfg.kv_dim(), cfg.dim) +
      matrix_bytes(dtype, cfg.dim, cfg.q_dim()) + 2 * matrix_bytes(dtype, cfg.ffn_dim, cfg.dim) +
      matrix_bytes(dtype, cfg.dim, cfg.ffn_dim) + 2 * cfg.dim * 4;  // two f32 norm weights
  c.weight_bytes = L * static_cast<double>(per_layer_bytes) +
                   n * static_cast<double>(matrix_bytes(dtype, 1, cfg.dim));  // embedding rows
  // The output norm and lm_head run only for rows that need logits (as in the engine).
  if (logits_rows > 0)
    c.weight_bytes += h * 4 + static_cast<double>(matrix_bytes(dtype, cfg.vocab_size, cfg.dim));

  c.kv_read_bytes = L * b * 2 * kv * kKvElemBytes * attended;
  c.kv_write_bytes = L * n * 2 * kv * kKvElemBytes;
  c.kv_cache_bytes = static_cast<double>(kv_cache_bytes(cfg, kv_positions_after, batch));
  return c;
}

void add_into(PhaseCost& sum, const PhaseCost& c) {
  sum.attn_q += c.attn_q;
  sum.attn_k += c.attn_k;
  sum.attn_v += c.attn_v;
  sum.attn_o += c.attn_o;
  sum.attn_qk += c.attn_qk;
  sum.attn_av += c.attn_av;
  sum.mlp_gate += c.mlp_gate;
  sum.mlp_up += c.mlp_up;
  sum.mlp_down += c.mlp_down;
  sum.lm_head += c.lm_head;
  sum.remainder += c.remainder;
  sum.total += c.total;
  sum.weight_bytes += c.weight_bytes;
  sum.kv_read_bytes += c.kv_read_bytes;
  sum.kv_write_bytes += c.kv_write_bytes;
}

}  // namespace

int64_t kv_cache_bytes(const ModelConfig& cfg, int64_t tokens, int64_t batch) {
  return 2 * cfg.n_layers * tokens * cfg.kv_dim() * static_cast<int64_t>(kKvElemBytes) * batch;
}

int64_t matrix_bytes(DType dtype, int64_t rows, int64_t cols) {
  const DTypeInfo& info = dtype_info(dtype);
  const int64_t blocks = (cols + info.block_elems - 1) / info.block_elems;
  return rows * blocks * info.block_bytes;
}

PhaseCost prefill_cost(const ModelConfig& cfg, DType dtype, int64_t batch, int64_t tokens,
                       int64_t logits_rows) {
  check_shape(cfg);
  check_positive(batch, "batch");
  check_positive(tokens, "prefill tokens");
  check(logits_rows >= 0 && logits_rows <= tokens, "cost: logits rows must be in [0, " +
                                                       std::to_string(tokens) + "], got " +
                                                       std::to_string(logits_rows));
  const double s = static_cast<double>(tokens);
  const double attended = s * (s + 1) / 2;  // Σ_{i<s} (i+1)
  return forward_cost(cfg, dtype, batch, tokens, attended, logits_rows, tokens);
}

PhaseCost decode_step_cost(const ModelConfig& cfg, DType dtype, int64_t batch,
                           int64_t context_len) {
  check_shape(cfg);
  check_positive(batch, "batch");
  check_positive(context_len, "decode context length");
  return forward_cost(cfg, dtype, batch, 1, static_cast<double>(context_len), 1, context_len);
}

GenericCost generic_cost(const ModelConfig& cfg, int64_t batch, int64_t rows, int64_t context,
                         int64_t logits_rows) {
  check_shape(cfg);
  check_positive(batch, "batch");
  check_positive(rows, "query rows");
  check_positive(context, "context");
  const double b = static_cast<double>(batch);
  const double s = static_cast<double>(rows);
  const double h = static_cast<double>(cfg.dim);
  const double L = static_cast<double>(cfg.n_layers);
  GenericCost g;
  g.per_layer = 24 * b * s * h * h + 4 * b * s * static_cast<double>(context) * h;
  g.qkvo = L * 8 * b * s * h * h;
  g.mlp = L * 16 * b * s * h * h;
  g.attn = L * 4 * b * s * static_cast<double>(context) * h;
  g.layers = g.qkvo + g.mlp + g.attn;
  g.lm_head = 2 * b * static_cast<double>(logits_rows) * h * static_cast<double>(cfg.vocab_size);
  g.total = g.layers + g.lm_head;
  return g;
}

RunCost run_cost(const ModelConfig& cfg, DType dtype, int64_t prompt, int64_t new_tokens,
                 int64_t batch, bool kv_cache) {
  check_shape(cfg);
  check_positive(prompt, "prompt tokens");
  check_positive(new_tokens, "new tokens");
  check_positive(batch, "batch");
  RunCost r;
  r.kv_cache = kv_cache;
  r.prompt = prompt;
  r.new_tokens = new_tokens;
  r.batch = batch;
  double flops = 0, bytes = 0, peak_kv = 0;
  for (int64_t k = 1; k <= new_tokens; ++k) {
    // Positions already known when token k is produced.
    const int64_t known = prompt + k - 1;
    PhaseCost step;
    double kv_memory = 0;
    if (kv_cache) {
      step = k == 1 ? prefill_cost(cfg, dtype, batch, prompt, 1)
                    : decode_step_cost(cfg, dtype, batch, known);
      kv_memory = step.kv_cache_bytes;
    } else {
      step = prefill_cost(cfg, dtype, batch, known, 1);
      kv_memory = static_cast<double>(kv_cache_bytes(cfg, known, batch)) /
                  static_cast<double>(cfg.n_layers);
    }
    add_into(r.total, step);
    flops += step.total;
    bytes += step.total_bytes();
    peak_kv = std::max(peak_kv, kv_memory);
    r.step_flops.push_back(step.total);
    r.cumulative_flops.push_back(flops);
    r.cumulative_bytes.push_back(bytes);
    r.kv_memory_bytes.push_back(kv_memory);
  }
  r.total.kv_cache_bytes = peak_kv;
  return r;
}

namespace {

ModelConfig shape(int64_t dim, int64_t layers, int64_t heads, int64_t kv_heads, int64_t ffn,
                  int64_t vocab, int64_t ctx, float theta, bool tied) {
  ModelConfig c;
  c.format = "shape";
  c.dim = dim;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.head_dim = dim / heads;
  c.ffn_dim = ffn;
  c.vocab_size = vocab;
  c.context_length = ctx;
  c.rope_theta = theta;
  c.tied_embeddings = tied;
  return c;
}

}  // namespace

std::vector<std::string> named_shape_names() {
  return {"tinyllama-1.1b", "llama-7b", "llama3-8b", "stories260k"};
}

ModelConfig named_shape(const std::string& name) {
  std::string s = name;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (s == "tinyllama-1.1b") return shape(2048, 22, 32, 4, 5632, 32000, 2048, 10000.0f, false);
  if (s == "llama-7b") return shape(4096, 32, 32, 32, 11008, 32000, 4096, 10000.0f, false);
  if (s == "llama3-8b") return shape(4096, 32, 32, 8, 14336, 128256, 8192, 500000.0f, false);
  if (s == "stories260k") return shape(64, 5, 8, 4, 172, 512, 512, 10000.0f, true);
  std::string known;
  for (const auto& n : named_shape_names()) {
    if (!known.empty()) known += ", ";
    known += n;
  }
  throw Error("cost: unknown shape '" + name + "' (known: " + known + ")");
}

}  // namespace nucleus::cost
