#include "util/npy.h"

#include <bit>
#include <fstream>

#include "util/error.h"

namespace nucleus {

std::string npy_header_f32(std::span<const int64_t> shape) {
  // The data is written as the host's floats; '<f4' is only true on little-endian hosts.
  static_assert(std::endian::native == std::endian::little, "npy writer assumes little-endian");
  std::string dims;
  for (int64_t d : shape) {
    check(d >= 0, "npy: negative dimension " + std::to_string(d));
    dims += std::to_string(d);
    dims += ", ";
  }
  // A 1-tuple needs its trailing comma; other tuples read fine with one too,
  // but numpy itself writes "(2, 3)", so drop it there.
  if (shape.size() != 1 && !dims.empty()) dims.resize(dims.size() - 2);
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  dict += dims;
  dict += "), }";
  const size_t preamble = 10;  // magic (6) + version (2) + header length (2)
  const size_t unpadded = preamble + dict.size() + 1;
  const size_t total = (unpadded + 63) / 64 * 64;
  check(total - preamble <= 0xffff, "npy: header too long for format 1.0");
  dict.append(total - unpadded, ' ');
  dict += '\n';
  const size_t len = dict.size();
  std::string h = "\x93NUMPY";
  h += '\x01';
  h += '\x00';
  h += static_cast<char>(len & 0xff);
  h += static_cast<char>(len >> 8);
  h += dict;
  return h;
}

void write_npy_f32(const std::string& path, const float* data, std::span<const int64_t> shape) {
  const std::string header = npy_header_f32(shape);
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  check(out.good(), "cannot write " + path);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(data),
            static_cast<std::streamsize>(count * static_cast<int64_t>(sizeof(float))));
  out.flush();
  check(out.good(), "failed writing " + path);
}

}  // namespace nucleus
