#include "runtime/engine.h"

#include <algorithm>
#include <string>

#include "kernels/attention.h"
#include "kernels/dtype.h"
#include "util/error.h"

namespace nucleus {

Engine::Engine(std::shared_ptr<const Model> model, const EngineOptions& options)
    : model_(std::move(model)),
      context_length_(options.context_length > 0 ? options.context_length
                                                 : model_->config().context_length),
      pool_(options.threads),
      kv_(KvCacheShape{
          model_->config().n_layers, model_->config().kv_dim(), options.kv_block_size,
          options.kv_blocks > 0
              ? options.kv_blocks
              : std::max<int64_t>(1, options.max_sequences) *
                    ((context_length_ + options.kv_block_size - 1) / options.kv_block_size),
          options.kv_type, model_->config().head_dim}),
      rope_(model_->config(), context_length_),
      bf16_dot_(kernels::bf16dot_enabled(options.bf16_dot)) {
  check(options.kv_block_size > 0 && options.kv_block_size <= 256,
        "kv block size must be in [1, 256]");
  check(config().head_dim <= kernels::kAttentionMaxHeadDim,
        "head_dim " + std::to_string(config().head_dim) + " exceeds attention's " +
            std::to_string(kernels::kAttentionMaxHeadDim));
}

void Engine::ensure_scratch(int64_t n) {
  if (n <= capacity_) return;
  const ModelConfig& c = config();
  auto grow = [n](std::vector<float>& v, int64_t width) {
    v.resize(static_cast<size_t>(n * width));
  };
  grow(x_, c.dim);
  grow(xn_, c.dim);
  grow(q_, c.q_dim());
  grow(k_, c.kv_dim());
  grow(v_, c.kv_dim());
  grow(att_, c.q_dim());
  grow(gate_, c.ffn_dim);
  grow(up_, c.ffn_dim);
  grow(out_, c.dim);
  pos_.resize(static_cast<size_t>(n));
  capacity_ = n;
}

void Engine::matmul(const kernels::Matrix& w, const float* x, int64_t n, float* y) {
  if (bf16_dot_ && w.type == DType::BF16) {
    kernels::matmul_bf16dot(w, x, n, y, pool_, ws_);
  } else {
    kernels::matmul(w, x, n, y, pool_, ws_);
  }
  counters_.matmul_flops += 2 * n * w.rows * w.cols;
  counters_.weight_bytes += static_cast<int64_t>(row_bytes(w.type, w.cols)) * w.rows;
}

void Engine::forward(const Batch& batch, std::vector<float>& logits) {
  const ModelConfig& c = config();
  const int64_t n = static_cast<int64_t>(batch.rows.size());
  check(n > 0, "forward: empty batch");

  // Validate everything before the KV cache changes. Messages are built only
  // on failure: this runs for every token.
  added_.clear();
  row_seq_.clear();
  int64_t n_logits = 0;
  for (const BatchRow& r : batch.rows) {
    if (!kv_.alive(r.seq)) throw Error("forward: unknown sequence " + std::to_string(r.seq));
    if (r.token < 0 || r.token >= c.vocab_size)
      throw Error("token id " + std::to_string(r.token) + " is out of range [0, " +
                  std::to_string(c.vocab_size) + ")");
    auto it =
        std::find_if(added_.begin(), added_.end(), [&](const auto& e) { return e.first == r.seq; });
    if (it == added_.end()) it = added_.insert(added_.end(), {r.seq, 0});
    row_seq_.push_back(static_cast<int32_t>(it - added_.begin()));
    const int64_t pos = kv_.length(r.seq) + it->second++;
    if (pos >= context_length_)
      throw Error("sequence exceeds the context length of " + std::to_string(context_length_) +
                  " positions");
    n_logits += r.logits ? 1 : 0;
  }
  int64_t blocks = 0;
  for (const auto& [seq, count] : added_) blocks += kv_.blocks_needed(seq, count);
  check(blocks <= kv_.free_blocks(), "kv cache: not enough free blocks for this batch");

  ensure_scratch(n);
  for (int64_t i = 0; i < n; ++i) pos_[i] = kv_.append(batch.rows[i].seq);

  // Embedding lookup.
  const TensorView& emb = model_->token_embedding();
  const size_t emb_row = row_bytes(emb.type, c.dim);
  for (int64_t i = 0; i < n; ++i)
    kernels::dequantize_row(emb.type, emb.data + emb_row * batch.rows[i].token,
                            x_.data() + i * c.dim, c.dim);
  counters_.weight_bytes += n * static_cast<int64_t>(emb_row);
  observe(-1, "embedding", x_, n, c.dim);

  const kernels::AttentionShape ashape{c.n_heads, c.n_kv_heads, c.head_dim, kv_.shape().block_size,
                                       kv_.shape().type};
  const int64_t qd = c.q_dim(), kvd = c.kv_dim();
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = model_->layers()[static_cast<size_t>(l)];
    for (int64_t i = 0; i < n; ++i)
      kernels::rmsnorm(xn_.data() + i * c.dim, x_.data() + i * c.dim, w.attn_norm.data(), c.dim,
                       c.rms_eps);
    observe(l, "attn_norm", xn_, n, c.dim);
    matmul(w.wq, xn_.data(), n, q_.data());
    matmul(w.wk, xn_.data(), n, k_.data());
    matmul(w.wv, xn_.data(), n, v_.data());
    for (int64_t i = 0; i < n; ++i) {
      float* q = q_.data() + i * qd;
      float* k = k_.data() + i * kvd;
      float* v = v_.data() + i * kvd;
      if (!w.bq.empty()) {
        for (int64_t j = 0; j < qd; ++j) q[j] += w.bq[j];
        for (int64_t j = 0; j < kvd; ++j) k[j] += w.bk[j];
        for (int64_t j = 0; j < kvd; ++j) v[j] += w.bv[j];
      }
      // Qwen3: each head of q and k is RMS-normalised on its own (weights
      // shared by all heads) before RoPE. Per row and head, so batch-invariant.
      if (!w.q_norm.empty()) {
        for (int64_t h = 0; h < c.n_heads; ++h)
          kernels::rmsnorm(q + h * c.head_dim, q + h * c.head_dim, w.q_norm.data(), c.head_dim,
                           c.rms_eps);
        for (int64_t h = 0; h < c.n_kv_heads; ++h)
          kernels::rmsnorm(k + h * c.head_dim, k + h * c.head_dim, w.k_norm.data(), c.head_dim,
                           c.rms_eps);
      }
      rope_.apply(q, c.n_heads, pos_[i]);
      rope_.apply(k, c.n_kv_heads, pos_[i]);
      const int32_t seq = batch.rows[i].seq;
      kv_.store(seq, l, pos_[i], k, v);
    }
    counters_.kv_write_bytes += n * 2 * kv_.row_bytes();
    observe(l, "q", q_, n, qd);
    observe(l, "k", k_, n, kvd);
    observe(l, "v", v_, n, kvd);

    // Attention: every row reads its own sequence's positions [0, pos]. One
    // block table per sequence of the batch (rows of a prompt share it), and
    // one task per (row, KV head) so each K/V block is read once for the
    // query heads that share it and decode spreads over the threads too.
    table_off_.resize(added_.size() + 1);
    table_off_[0] = 0;
    for (size_t s = 0; s < added_.size(); ++s) {
      const int64_t len = kv_.length(added_[s].first);
      table_off_[s + 1] = table_off_[s] + (len + ashape.block_size - 1) / ashape.block_size;
    }
    kblocks_.resize(static_cast<size_t>(table_off_.back()));
    vblocks_.resize(static_cast<size_t>(table_off_.back()));
    for (size_t s = 0; s < added_.size(); ++s) {
      const std::span<const int32_t> ids = kv_.blocks(added_[s].first);
      for (int64_t b = 0; b < table_off_[s + 1] - table_off_[s]; ++b) {
        kblocks_[static_cast<size_t>(table_off_[s] + b)] =
            kv_.key_data(ids[static_cast<size_t>(b)], l);
        vblocks_[static_cast<size_t>(table_off_[s] + b)] =
            kv_.value_data(ids[static_cast<size_t>(b)], l);
      }
    }
    const auto attend = [&](int64_t task) {
      const int64_t i = task / c.n_kv_heads;
      const int64_t kvh = task % c.n_kv_heads;
      const int64_t npos = pos_[i] + 1;
      const size_t nb = static_cast<size_t>((npos + ashape.block_size - 1) / ashape.block_size);
      const size_t off = static_cast<size_t>(table_off_[static_cast<size_t>(row_seq_[i])]);
      kernels::attention_kv_group(
          ashape, q_.data() + i * qd, std::span<const void* const>(kblocks_.data() + off, nb),
          std::span<const void* const>(vblocks_.data() + off, nb), npos, kvh, att_.data() + i * qd);
    };
    // One captured reference fits std::function's small buffer: no allocation.
    pool_.parallel_for(n * c.n_kv_heads, [&attend](int64_t task) { attend(task); });
    for (int64_t i = 0; i < n; ++i) {
      counters_.attention_flops += 4 * c.head_dim * (pos_[i] + 1) * c.n_heads;
      counters_.kv_read_bytes += 2 * (pos_[i] + 1) * kv_.row_bytes();
    }

    observe(l, "attn_out", att_, n, qd);
    matmul(w.wo, att_.data(), n, out_.data());
    if (!w.bo.empty())
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < c.dim; ++j) out_[i * c.dim + j] += w.bo[j];
    observe(l, "attn_proj", out_, n, c.dim);
    for (int64_t j = 0; j < n * c.dim; ++j) x_[j] += out_[j];
    observe(l, "resid_attn", x_, n, c.dim);

    for (int64_t i = 0; i < n; ++i)
      kernels::rmsnorm(xn_.data() + i * c.dim, x_.data() + i * c.dim, w.ffn_norm.data(), c.dim,
                       c.rms_eps);
    observe(l, "ffn_norm", xn_, n, c.dim);
    matmul(w.w_gate, xn_.data(), n, gate_.data());
    matmul(w.w_up, xn_.data(), n, up_.data());
    observe(l, "ffn_gate", gate_, n, c.ffn_dim);  // before swiglu overwrites it
    observe(l, "ffn_up", up_, n, c.ffn_dim);
    kernels::swiglu(gate_.data(), gate_.data(), up_.data(), n * c.ffn_dim);
    observe(l, "ffn_act", gate_, n, c.ffn_dim);
    matmul(w.w_down, gate_.data(), n, out_.data());
    observe(l, "ffn_down", out_, n, c.dim);
    for (int64_t j = 0; j < n * c.dim; ++j) x_[j] += out_[j];
    observe(l, "resid_ffn", x_, n, c.dim);
    counters_.weight_bytes += 2 * c.dim * static_cast<int64_t>(sizeof(float));  // the two norms
  }

  // Final norm and lm_head only for the rows that asked for logits.
  logits.resize(static_cast<size_t>(n_logits * c.vocab_size));
  if (n_logits == 0) return;
  int64_t r = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!batch.rows[i].logits) continue;
    kernels::rmsnorm(xn_.data() + r * c.dim, x_.data() + i * c.dim, model_->output_norm().data(),
                     c.dim, c.rms_eps);
    ++r;
  }
  counters_.weight_bytes += c.dim * static_cast<int64_t>(sizeof(float));  // output norm
  observe(c.n_layers, "output_norm", xn_, n_logits, c.dim);
  matmul(model_->output(), xn_.data(), n_logits, logits.data());
  observe(c.n_layers, "logits", logits, n_logits, c.vocab_size);
}

void Engine::prefill(int32_t seq, std::span<const int32_t> tokens, std::vector<float>& logits,
                     bool all_positions) {
  check(!tokens.empty(), "prefill: empty prompt");
  scratch_batch_.clear();
  for (size_t i = 0; i < tokens.size(); ++i)
    scratch_batch_.add(seq, tokens[i], all_positions || i + 1 == tokens.size());
  forward(scratch_batch_, logits);
}

}  // namespace nucleus
