#pragma once
// Reader for the safetensors format: an 8-byte little-endian header length, a
// JSON header {name: {dtype, shape, data_offsets}} and the raw tensor bytes.
// Tensors are views into the mapped file; nothing is copied unless a tensor's
// bytes are not aligned to its element size.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "formats/tensor.h"
#include "util/mapped_file.h"

namespace nucleus {

struct SafetensorsFile {
  std::string path;
  // Keyed by the file's own tensor names. Shapes are in ggml order (reversed
  // from the header's row-major order), so an HF [out, in] matrix is [in, out].
  std::map<std::string, TensorView> tensors;
  std::shared_ptr<MappedFile> mapping;
  // Copies of tensors whose bytes were misaligned in the file.
  std::vector<std::shared_ptr<std::vector<uint8_t>>> owned;
};

// Supports dtypes F32, F16 and BF16. Throws Error naming the file and the
// tensor on any inconsistency: header length beyond the file, malformed JSON,
// unsupported dtype, bad shape, offsets out of range, size not matching the
// shape, tensors whose byte ranges overlap, gaps between tensors, or bytes
// after the last tensor (the data section must be tiled exactly, as the
// format's own validator requires).
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace nucleus
