#pragma once
// NumPy .npy files (format version 1.0) for handing arrays to outside tools:
// magic "\x93NUMPY", version 1.0, a little-endian u16 header length, then a
// Python dict literal padded with spaces and ended by '\n' so that the data
// starts at a multiple of 64 bytes, then the data in C order.
#include <cstdint>
#include <span>
#include <string>

namespace nucleus {

// The complete header (magic through '\n') for a little-endian float32 C-order
// array of this shape. Throws Error on a negative dimension.
std::string npy_header_f32(std::span<const int64_t> shape);

// Writes data (the product of shape's dimensions floats) as path. Throws Error
// naming the path when the file cannot be written.
void write_npy_f32(const std::string& path, const float* data, std::span<const int64_t> shape);

}  // namespace nucleus
