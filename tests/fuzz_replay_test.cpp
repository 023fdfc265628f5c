// Replays the fuzz regression corpus: every input that once crashed, hung or
// blew memory in a fuzz target (tests/data/fuzz/<target>/) runs through the
// same target function again, built by the ordinary compiler without
// libFuzzer. A target swallows nucleus::Error (the right answer to bad
// input); any other exception fails the test, a crash or failed invariant
// aborts it.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <vector>

#include "fuzz/targets.h"

namespace nucleus {
namespace {

namespace fs = std::filesystem;
const fs::path kCorpus = fs::path(NUCLEUS_TEST_DATA) / "fuzz";

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

class FuzzReplay : public ::testing::TestWithParam<fuzz::Target> {};

TEST_P(FuzzReplay, RegressionCorpus) {
  const fuzz::Target t = GetParam();
  const fs::path dir = kCorpus / t.name;
  if (!fs::is_directory(dir)) GTEST_SKIP() << "no regression inputs for " << t.name;
  std::set<fs::path> files;  // sorted, so failures name the same input every run
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != "README.md") files.insert(e.path());
  for (const fs::path& p : files) {
    SCOPED_TRACE(p.string());
    const std::vector<uint8_t> bytes = read_bytes(p);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_NO_THROW(t.run(fuzz::Input(bytes.data(), bytes.size())));
    // Not a timing test: only a hang that came back would take this long.
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
  }
}

// Every corpus directory belongs to a target (a typo would silently skip it).
TEST(FuzzReplay, CorpusDirectoriesNameTargets) {
  if (!fs::is_directory(kCorpus)) GTEST_SKIP();
  std::set<std::string> names;
  for (const fuzz::Target& t : fuzz::targets()) names.insert(t.name);
  for (const auto& e : fs::directory_iterator(kCorpus)) {
    if (e.is_directory()) {
      EXPECT_TRUE(names.count(e.path().filename().string())) << e.path();
    }
  }
}

TEST(FuzzReplay, SplitParts) {
  const std::string s = std::string("a") + std::string(fuzz::kSeparator) + "b";
  const auto in = fuzz::Input(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  EXPECT_EQ(fuzz::split_parts(in, 2), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(fuzz::split_parts(in, 3), (std::vector<std::string>{"a", "b", ""}));
  EXPECT_EQ(fuzz::split_parts(in, 1), (std::vector<std::string>{s}));
}

INSTANTIATE_TEST_SUITE_P(AllTargets, FuzzReplay, ::testing::ValuesIn(fuzz::targets()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace nucleus
