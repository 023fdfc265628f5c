// KV cache: block accounting, fork with shared blocks, copy-on-write of the
// partly filled last block, release, and pool exhaustion.
#include "kv/kv_cache.h"

#include <gtest/gtest.h>

#include "util/error.h"

namespace nucleus {
namespace {

KvCacheShape small_shape(int64_t n_blocks) {
  return {2, 4, 4, n_blocks};
}

void fill(KvCache& kv, KvCache::SeqId s, float base) {
  const int64_t pos = kv.append(s);
  for (int64_t l = 0; l < 2; ++l)
    for (int64_t j = 0; j < 4; ++j) {
      kv.key(s, l, pos)[j] = base + static_cast<float>(l * 10 + j);
      kv.value(s, l, pos)[j] = -base - static_cast<float>(l * 10 + j);
    }
}

TEST(KvCache, AppendAllocatesOneBlockPerBlockSizePositions) {
  KvCache kv(small_shape(8));
  auto s = kv.create();
  for (int i = 0; i < 9; ++i) fill(kv, s, static_cast<float>(i));
  EXPECT_EQ(kv.length(s), 9);
  EXPECT_EQ(kv.blocks(s).size(), 3u);  // ceil(9 / 4)
  EXPECT_EQ(kv.memory().blocks_used, 3);
  EXPECT_EQ(kv.memory().bytes_per_block, 2 * 2 * 4 * 4 * 4);
  EXPECT_FLOAT_EQ(kv.key(s, 1, 5)[2], 5 + 12);
  EXPECT_FLOAT_EQ(kv.value(s, 0, 8)[3], -(8 + 3));
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
  EXPECT_FLOAT_EQ(kv.key(b, 0, 5)[0], 5.0f);
  EXPECT_FLOAT_EQ(kv.key(b, 0, 6)[0], 100.0f);
  EXPECT_EQ(kv.length(a), 6);

  fill(kv, a, 200.0f);  // a is now the only owner of its last block: no copy
  EXPECT_EQ(kv.memory().blocks_used, 3);
  EXPECT_FLOAT_EQ(kv.key(a, 0, 6)[0], 200.0f);
  EXPECT_FLOAT_EQ(kv.key(b, 0, 6)[0], 100.0f);
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
  EXPECT_THROW(kv.key(a, 0, 8), Error);
  EXPECT_THROW(kv.key(a, 2, 0), Error);
}

}  // namespace
}  // namespace nucleus
