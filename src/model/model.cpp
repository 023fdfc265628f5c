#include "model/model.h"

#include <string>

#include "kernels/dtype.h"
#include "kernels/kquant.h"
#include "util/error.h"

namespace nucleus {
namespace {

std::string describe(const TensorView& t) {
  return t.name + " " + t.shape_str() + " " + dtype_name(t.type);
}

kernels::Matrix matrix(const ModelFile& f, const std::string& name, int64_t cols, int64_t rows) {
  const TensorView& t = f.get(name);
  check(t.shape.size() == 2 && t.shape[0] == cols && t.shape[1] == rows,
        "tensor " + describe(t) + ": expected shape [" + std::to_string(cols) + ", " +
            std::to_string(rows) + "]");
  check(cols % dtype_info(t.type).block_elems == 0,
        "tensor " + describe(t) + ": row length is not a multiple of the block size");
  check(t.nbytes >= row_bytes(t.type, cols) * static_cast<size_t>(rows),
        "tensor " + describe(t) + ": data is shorter than its shape");
  check(!kernels::is_kquant(t.type) || kernels::kquant_scales_finite(t.type, t.data, cols * rows),
        "tensor " + describe(t) + ": a block scale is NaN or infinite");
  return kernels::Matrix{t.type, rows, cols, t.data};
}

std::vector<float> vector_f32(const ModelFile& f, const std::string& name, int64_t n) {
  const TensorView& t = f.get(name);
  check(t.numel() == n && t.shape.size() == 1,
        "tensor " + describe(t) + ": expected " + std::to_string(n) + " elements");
  check(t.nbytes >= row_bytes(t.type, n), "tensor " + describe(t) + ": data too short");
  std::vector<float> v(static_cast<size_t>(n));
  kernels::dequantize_row(t.type, t.data, v.data(), n);
  return v;
}

}  // namespace

Model::Model(std::shared_ptr<const ModelFile> file) : file_(std::move(file)) {
  const ModelConfig& c = file_->config;
  c.validate();
  check(!c.mlp_bias, "model config: MLP biases (mlp_bias) are not supported");
  const ModelFile& f = *file_;
  embedding_ = &f.get("token_embd.weight");
  kernels::Matrix emb = matrix(f, "token_embd.weight", c.dim, c.vocab_size);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LayerWeights w;
    w.attn_norm = vector_f32(f, p + "attn_norm.weight", c.dim);
    w.ffn_norm = vector_f32(f, p + "ffn_norm.weight", c.dim);
    w.wq = matrix(f, p + "attn_q.weight", c.dim, c.q_dim());
    w.wk = matrix(f, p + "attn_k.weight", c.dim, c.kv_dim());
    w.wv = matrix(f, p + "attn_v.weight", c.dim, c.kv_dim());
    w.wo = matrix(f, p + "attn_output.weight", c.q_dim(), c.dim);
    w.w_gate = matrix(f, p + "ffn_gate.weight", c.dim, c.ffn_dim);
    w.w_up = matrix(f, p + "ffn_up.weight", c.dim, c.ffn_dim);
    w.w_down = matrix(f, p + "ffn_down.weight", c.ffn_dim, c.dim);
    if (c.attn_bias) {
      w.bq = vector_f32(f, p + "attn_q.bias", c.q_dim());
      w.bk = vector_f32(f, p + "attn_k.bias", c.kv_dim());
      w.bv = vector_f32(f, p + "attn_v.bias", c.kv_dim());
      // Llama's attention_bias also biases o_proj; Qwen2 has none.
      if (f.find(p + "attn_output.bias") != nullptr)
        w.bo = vector_f32(f, p + "attn_output.bias", c.dim);
    }
    if (c.qk_norm) {
      w.q_norm = vector_f32(f, p + "attn_q_norm.weight", c.head_dim);
      w.k_norm = vector_f32(f, p + "attn_k_norm.weight", c.head_dim);
    }
    layers_.push_back(std::move(w));
  }
  output_norm_ = vector_f32(f, "output_norm.weight", c.dim);
  output_ =
      f.find("output.weight") != nullptr ? matrix(f, "output.weight", c.dim, c.vocab_size) : emb;
  // Q8_0/Q4_0 are repacked; every other type read from the file mapping is
  // copied as it is; both onto huge pages (quant_pack.h says why). Matrices
  // already in memory the file owns (converted at load by --quantize) stay
  // where they are: a second copy would only double them. The file's copy
  // is not read again (the embedding rows of a tied output still are, and
  // fault back in from the file).
  auto pack = [this](kernels::Matrix& m) {
    packed_.emplace_back();
    const uint8_t* const source = m.data;
    const size_t bytes = row_bytes(m.type, m.cols) * static_cast<size_t>(m.rows);
    m = kernels::pack_matrix(m, packed_.back());
    if (m.packed == nullptr && file_->mapped(source, bytes))
      m = kernels::copy_matrix(m, packed_.back());
    file_->release_pages(source, bytes);
  };
  for (LayerWeights& w : layers_) {
    for (kernels::Matrix* m : {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_gate, &w.w_up, &w.w_down}) pack(*m);
  }
  pack(output_);
}

int64_t Model::weight_bytes() const {
  auto bytes = [](const kernels::Matrix& m) {
    return static_cast<int64_t>(row_bytes(m.type, m.cols)) * m.rows;
  };
  int64_t total = bytes(output_);
  for (const LayerWeights& w : layers_) {
    total += bytes(w.wq) + bytes(w.wk) + bytes(w.wv) + bytes(w.wo) + bytes(w.w_gate) +
             bytes(w.w_up) + bytes(w.w_down);
  }
  return total;
}

}  // namespace nucleus
