// KV cache: block accounting, fork with shared blocks, copy-on-write of the
// partly filled last block, release, and pool exhaustion; rows stored as
// F16 / Q8_0 hold exactly the ggml conversion of what was written.
#include "kv/kv_cache.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "kernels/dtype.h"
#include "util/error.h"

namespace nucleus {
namespace {

KvCacheShape small_shape(int64_t n_blocks) {
  return {2, 4, 4, n_blocks};
}

void fill(KvCache& kv, KvCache::SeqId s, float base) {
  const int64_t pos = kv.append(s);
  for (int64_t l = 0; l < 2; ++l) {
    float k[4], v[4];
    for (int64_t j = 0; j < 4; ++j) {
      k[j] = base + static_cast<float>(l * 10 + j);
      v[j] = -base - static_cast<float>(l * 10 + j);
    }
    kv.store(s, l, pos, k, v);
  }
}

// Element j of a stored key / value row, read back through load().
float key_at(const KvCache& kv, KvCache::SeqId s, int64_t l, int64_t pos, int64_t j) {
  std::vector<float> k(static_cast<size_t>(kv.shape().kv_dim)), v(k.size());
  kv.load(s, l, pos, k.data(), v.data());
  return k[static_cast<size_t>(j)];
}
float value_at(const KvCache& kv, KvCache::SeqId s, int64_t l, int64_t pos, int64_t j) {
  std::vector<float> k(static_cast<size_t>(kv.shape().kv_dim)), v(k.size());
  kv.load(s, l, pos, k.data(), v.data());
  return v[static_cast<size_t>(j)];
}

TEST(KvCache, AppendAllocatesOneBlockPerBlockSizePositions) {
  KvCache kv(small_shape(8));
  auto s = kv.create();
  for (int i = 0; i < 9; ++i) fill(kv, s, static_cast<float>(i));
  EXPECT_EQ(kv.length(s), 9);
  EXPECT_EQ(kv.blocks(s).size(), 3u);  // ceil(9 / 4)
  EXPECT_EQ(kv.memory().blocks_used, 3);
  EXPECT_EQ(kv.memory().bytes_per_block, 2 * 2 * 4 * 4 * 4);
  EXPECT_FLOAT_EQ(key_at(kv, s, 1, 5, 2), 5 + 12);
  EXPECT_FLOAT_EQ(value_at(kv, s, 0, 8, 3), -(8 + 3));
}

TEST(KvCache, ForkSharesBlocksAndCopiesOnlyThePartialLastBlock) {
  KvCache kv(small_shape(8));
  auto a = kv.create();
  for (int i = 0; i < 6; ++i) fill(kv, a, static_cast<float>(i));  // blocks: full, half
  auto b = kv.fork(a);
  EXPECT_EQ(kv.length(b), 6);
  EXPECT_EQ(kv.memory().blocks_used, 2);  // nothing copied yet
  EXPECT_EQ(kv.ref_count(kv.blocks(a)[0]), 2);
  EXPECT_EQ(kv.blocks_needed(b, 1), 1);  // the shared half block must be copied

  fill(kv, b, 100.0f);  // position 6 lands in the shared block: copy-on-write
  EXPECT_EQ(kv.memory().blocks_used, 3);
  EXPECT_EQ(kv.blocks(a)[0], kv.blocks(b)[0]);  // full block still shared
  EXPECT_NE(kv.blocks(a)[1], kv.blocks(b)[1]);
  // The copy kept the shared history; the original did not see b's write.
  EXPECT_FLOAT_EQ(key_at(kv, b, 0, 5, 0), 5.0f);
  EXPECT_FLOAT_EQ(key_at(kv, b, 0, 6, 0), 100.0f);
  EXPECT_EQ(kv.length(a), 6);

  fill(kv, a, 200.0f);  // a is now the only owner of its last block: no copy
  EXPECT_EQ(kv.memory().blocks_used, 3);
  EXPECT_FLOAT_EQ(key_at(kv, a, 0, 6, 0), 200.0f);
  EXPECT_FLOAT_EQ(key_at(kv, b, 0, 6, 0), 100.0f);
}

TEST(KvCache, ForkAtBlockBoundaryCopiesNothing) {
  KvCache kv(small_shape(8));
  auto a = kv.create();
  for (int i = 0; i < 4; ++i) fill(kv, a, static_cast<float>(i));
  auto b = kv.fork(a);
  fill(kv, b, 9.0f);
  EXPECT_EQ(kv.memory().blocks_used, 2);  // one shared + one new, no copy
}

TEST(KvCache, ReleaseReturnsBlocksWhenLastOwnerGoes) {
  KvCache kv(small_shape(8));
  auto a = kv.create();
  for (int i = 0; i < 5; ++i) fill(kv, a, 0.0f);
  auto b = kv.fork(a);
  kv.release(a);
  EXPECT_EQ(kv.memory().blocks_used, 2);  // b still holds them
  EXPECT_FALSE(kv.alive(a));
  kv.release(b);
  EXPECT_EQ(kv.memory().blocks_used, 0);
  EXPECT_THROW(kv.length(b), Error);
}

TEST(KvCache, TruncateDropsWholeBlocks) {
  KvCache kv(small_shape(8));
  auto a = kv.create();
  for (int i = 0; i < 9; ++i) fill(kv, a, 0.0f);
  kv.truncate(a, 4);
  EXPECT_EQ(kv.blocks(a).size(), 1u);
  EXPECT_EQ(kv.memory().blocks_used, 1);
  EXPECT_THROW(kv.truncate(a, 5), Error);
}

TEST(KvCache, ExhaustedPoolIsAnErrorNotACrash) {
  KvCache kv(small_shape(2));
  auto a = kv.create();
  for (int i = 0; i < 8; ++i) fill(kv, a, 0.0f);
  EXPECT_EQ(kv.blocks_needed(a, 1), 1);
  EXPECT_THROW(kv.append(a), Error);
  EXPECT_THROW(key_at(kv, a, 0, 8, 0), Error);
  EXPECT_THROW(key_at(kv, a, 2, 0, 0), Error);
}

TEST(KvCache, StoredTypesHoldTheConversionOfEachRow) {
  for (DType type : {DType::F32, DType::F16, DType::Q8_0})
    for (int64_t head_dim : {0, 16, 8}) {  // one head of 64, 4 heads, 8 heads (Q8_0 blocks span 4)
      SCOPED_TRACE(head_dim);
      KvCacheShape shape{3, 64, 4, 8, type, head_dim};
      KvCache kv(shape);
      const size_t rb = row_bytes(type, 64);
      EXPECT_EQ(kv.row_bytes(), static_cast<int64_t>(rb));
      EXPECT_EQ(kv.memory().bytes_per_block, static_cast<int64_t>(3 * 2 * 4 * rb));
      auto s = kv.create();
      std::vector<float> k(64), v(64);
      for (int pos = 0; pos < 6; ++pos) {
        kv.append(s);
        for (int64_t l = 0; l < 3; ++l) {
          for (int j = 0; j < 64; ++j) {
            k[j] = 0.37f * static_cast<float>(pos * 7 - j) + static_cast<float>(l);
            v[j] = -0.11f * static_cast<float>(j * j % 13) + static_cast<float>(pos);
          }
          kv.store(s, l, pos, k.data(), v.data());
          // What load() gives back must be dtype.cpp's ggml-exact conversion
          // of the row and back, element for element.
          std::vector<uint8_t> qk(rb), qv(rb);
          std::vector<float> want_k(64), want_v(64), got_k(64), got_v(64);
          kernels::quantize_row(type, k.data(), qk.data(), 64);
          kernels::quantize_row(type, v.data(), qv.data(), 64);
          kernels::dequantize_row(type, qk.data(), want_k.data(), 64);
          kernels::dequantize_row(type, qv.data(), want_v.data(), 64);
          kv.load(s, l, pos, got_k.data(), got_v.data());
          EXPECT_EQ(0, std::memcmp(got_k.data(), want_k.data(), 64 * 4)) << dtype_name(type);
          EXPECT_EQ(0, std::memcmp(got_v.data(), want_v.data(), 64 * 4)) << dtype_name(type);
        }
      }
      // Copy-on-write copies whole stored blocks whatever the type.
      auto f = kv.fork(s);
      kv.append(f);
      const int32_t shared = kv.blocks(s)[1], copied = kv.blocks(f)[1];
      EXPECT_NE(shared, copied);
      EXPECT_EQ(0, std::memcmp(kv.key_data(shared, 2), kv.key_data(copied, 2), 4 * rb));
      EXPECT_EQ(0, std::memcmp(kv.value_data(shared, 2), kv.value_data(copied, 2), 4 * rb));
    }
}

TEST(KvCache, KvTypeNamesAndUnsupportedShapes) {
  EXPECT_EQ(parse_kv_type("f32"), DType::F32);
  EXPECT_EQ(parse_kv_type("f16"), DType::F16);
  EXPECT_EQ(parse_kv_type("q8_0"), DType::Q8_0);
  EXPECT_THROW(parse_kv_type("q4_0"), Error);
  EXPECT_THROW(parse_kv_type("F16"), Error);
  EXPECT_THROW(KvCache(KvCacheShape{2, 48, 4, 4, DType::Q8_0}), Error);  // 48: not whole blocks
  EXPECT_THROW(KvCache(KvCacheShape{2, 64, 4, 4, DType::Q4_0}), Error);
}

}  // namespace
}  // namespace nucleus
