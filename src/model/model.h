#pragma once
// A model ready to run: its configuration and typed views of every weight the
// forward pass needs. Float matrices stay where the file put them (mmap);
// Q8_0/Q4_0 matrices are repacked once into the interleaved layout the
// kernels stream (kernels/quant_pack.h); the small 1-D tensors (norms,
// biases) are converted to float here.
#include <memory>
#include <vector>

#include "formats/model_file.h"
#include "kernels/matmul.h"
#include "kernels/quant_pack.h"
#include "model/config.h"

namespace nucleus {

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;
  kernels::Matrix wq, wk, wv, wo;
  kernels::Matrix w_gate, w_up, w_down;
  std::vector<float> bq, bk, bv;      // empty unless the model has q/k/v biases
  std::vector<float> bo;              // o_proj bias (Llama attention_bias); empty when absent
  std::vector<float> q_norm, k_norm;  // [head_dim] each; empty unless config.qk_norm
};

class Model {
 public:
  // Validates every tensor's presence, type and shape against the config.
  explicit Model(std::shared_ptr<const ModelFile> file);

  const ModelConfig& config() const { return file_->config; }
  const ModelFile& file() const { return *file_; }
  const Vocab& vocab() const { return file_->vocab; }

  const TensorView& token_embedding() const { return *embedding_; }
  const std::vector<LayerWeights>& layers() const { return layers_; }
  const std::vector<float>& output_norm() const { return output_norm_; }
  const kernels::Matrix& output() const { return output_; }
  // The dominant matrix type (for cost reports).
  DType weight_type() const { return layers_.front().wq.type; }
  // Bytes of all matrices a forward step reads.
  int64_t weight_bytes() const;

 private:
  std::shared_ptr<const ModelFile> file_;
  const TensorView* embedding_ = nullptr;
  std::vector<LayerWeights> layers_;
  std::vector<float> output_norm_;
  kernels::Matrix output_;
  std::vector<kernels::AlignedBytes> packed_;  // storage of repacked matrices
};

}  // namespace nucleus
