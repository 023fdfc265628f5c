#pragma once
// A read-only memory mapping of a whole file. Model weights stay in the page
// cache and are read in place; nothing is copied unless a kernel wants a
// different layout.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace nucleus {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }
  // True when [p, p + n) lies inside this mapping.
  bool contains(const uint8_t* p, size_t n) const;
  // Drops the whole pages inside [p, p + n) from this process's memory when
  // they lie in this mapping (they are read again from the file if touched),
  // e.g. weights that were copied into another layout. Does nothing for
  // memory outside the mapping.
  void release(const uint8_t* p, size_t n) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace nucleus
