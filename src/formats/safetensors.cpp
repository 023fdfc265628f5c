#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "util/error.h"

namespace nucleus {

namespace {

using nlohmann::json;

// Any real header is far below this; the cap keeps a lying length from
// making us parse gigabytes of tensor data as JSON.
constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;
// Element counts above this cannot describe a real tensor and would overflow
// byte counts.
constexpr uint64_t kMaxElements = uint64_t{1} << 50;

bool parse_dtype_name(const std::string& s, DType* out) {
  if (s == "F32")
    *out = DType::F32;
  else if (s == "F16")
    *out = DType::F16;
  else if (s == "BF16")
    *out = DType::BF16;
  else
    return false;
  return true;
}

struct Range {
  uint64_t begin, end;
  std::string name;
};

}  // namespace

SafetensorsFile read_safetensors(const std::string& path) {
  SafetensorsFile out;
  out.path = path;
  out.mapping = std::make_shared<MappedFile>(path);
  const uint8_t* base = out.mapping->data();
  const uint64_t size = out.mapping->size();
  const std::string where = path + ": ";

  check(size >= 8,
        where + "file of " + std::to_string(size) + " bytes is too short for a safetensors header");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];
  check(header_len <= size - 8, where + "header length " + std::to_string(header_len) +
                                    " exceeds the file size " + std::to_string(size));
  check(header_len <= kMaxHeaderBytes,
        where + "header length " + std::to_string(header_len) + " is implausibly large");
  const uint8_t* data = base + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;

  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(base + 8),
                         reinterpret_cast<const char*>(base + 8 + header_len));
  } catch (const json::exception& e) {
    throw Error(where + "header is not valid JSON: " + e.what());
  }
  check(header.is_object(), where + "header is not a JSON object");

  std::vector<Range> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string tw = where + "tensor '" + name + "': ";
    check(entry.is_object(), tw + "entry is not an object");
    check(entry.contains("dtype") && entry["dtype"].is_string(), tw + "missing string 'dtype'");
    check(entry.contains("shape") && entry["shape"].is_array(), tw + "missing array 'shape'");
    check(entry.contains("data_offsets") && entry["data_offsets"].is_array() &&
              entry["data_offsets"].size() == 2,
          tw + "missing 'data_offsets' pair");

    const std::string dtype_str = entry["dtype"].get<std::string>();
    DType type{};
    check(parse_dtype_name(dtype_str, &type),
          tw + "unsupported dtype '" + dtype_str + "' (nucleus reads F32, F16, BF16)");
    const uint64_t elem = static_cast<uint64_t>(dtype_info(type).block_bytes);

    const json& shape = entry["shape"];
    check(shape.size() <= 4,
          tw + "shape has " + std::to_string(shape.size()) + " dimensions (at most 4 supported)");
    std::vector<int64_t> dims;
    uint64_t numel = 1;
    for (const json& d : shape) {
      check(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
            tw + "shape entry " + d.dump() + " is not a non-negative integer");
      const uint64_t v = d.get<uint64_t>();
      check(v <= kMaxElements && (v == 0 || numel <= kMaxElements / v),
            tw + "shape " + shape.dump() + " overflows the element count");
      numel *= v;
      dims.push_back(static_cast<int64_t>(v));
    }
    std::reverse(dims.begin(), dims.end());

    const json& offs = entry["data_offsets"];
    for (const json& o : offs)
      check(o.is_number_unsigned() || (o.is_number_integer() && o.get<int64_t>() >= 0),
            tw + "data_offsets entry " + o.dump() + " is not a non-negative integer");
    const uint64_t begin = offs[0].get<uint64_t>();
    const uint64_t end = offs[1].get<uint64_t>();
    std::string offs_str = "[";
    offs_str += std::to_string(begin);
    offs_str += ", ";
    offs_str += std::to_string(end);
    offs_str += "]";
    check(begin <= end, tw + "data_offsets " + offs_str + " end before begin");
    check(end <= data_size, tw + "data_offsets " + offs_str + " beyond the data section of " +
                                std::to_string(data_size) + " bytes");
    check(end - begin == numel * elem, tw + "data_offsets " + offs_str + " hold " +
                                           std::to_string(end - begin) + " bytes but shape " +
                                           shape.dump() + " of " + dtype_str + " needs " +
                                           std::to_string(numel * elem));

    TensorView view;
    view.name = name;
    view.type = type;
    view.shape = std::move(dims);
    view.nbytes = static_cast<size_t>(end - begin);
    view.data = data + begin;
    if (reinterpret_cast<uintptr_t>(view.data) % elem != 0) {
      auto copy = std::make_shared<std::vector<uint8_t>>(view.data, view.data + view.nbytes);
      view.data = copy->data();
      out.owned.push_back(std::move(copy));
    }
    out.tensors.emplace(name, std::move(view));
    ranges.push_back({begin, end, name});
  }

  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Empty tensors occupy no bytes and cannot overlap anything.
  const Range* last = nullptr;
  for (const Range& cur : ranges) {
    if (cur.begin == cur.end) continue;
    if (last != nullptr)
      check(cur.begin >= last->end,
            where + "tensor '" + cur.name + "' bytes [" + std::to_string(cur.begin) + ", " +
                std::to_string(cur.end) + ") overlap tensor '" + last->name + "' [" +
                std::to_string(last->begin) + ", " + std::to_string(last->end) + ")");
    last = &cur;
  }
  // As the format's own validator: the tensors tile the data section exactly,
  // from byte 0 to the end of the file, so no bytes hide between or after them.
  uint64_t expect = 0;
  for (const Range& cur : ranges) {
    check(cur.begin == expect, where + "tensor '" + cur.name + "' starts at data offset " +
                                   std::to_string(cur.begin) + " but the previous tensor ends at " +
                                   std::to_string(expect) + " (tensors must be contiguous)");
    expect = cur.end;
  }
  check(expect == data_size, where + "tensors end at data offset " + std::to_string(expect) +
                                 " but the data section has " + std::to_string(data_size) +
                                 " bytes (it must end with the last tensor)");
  return out;
}

}  // namespace nucleus
