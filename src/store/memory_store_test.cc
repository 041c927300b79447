#include "store/memory_store.h"

#include <gtest/gtest.h>

#include "hll/hll.h"

namespace gimel::store {
namespace {

TEST(MemoryStore, CountsDistinctUuidsPerCounterAndDeletesOneExperiment) {
  MemoryStore s;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(s.AddSync({"ns", "e1", "participate", "red", std::to_string(i % 40)}).ok());
  }
  ASSERT_TRUE(s.AddSync({"ns", "e2", "participate", "blue", "u"}).ok());
  auto counters = s.ReadExperiment("ns", "e1");
  ASSERT_TRUE(counters.ok());
  ASSERT_EQ(counters->size(), 1u);
  EXPECT_EQ(*hll::Count((*counters)[0].hll), 40u);
  EXPECT_EQ(s.ListExperiments("ns")->size(), 2u);
  ASSERT_TRUE(s.DeleteExperiment("ns", "e1").ok());
  EXPECT_TRUE(s.ReadExperiment("ns", "e1")->empty());
  EXPECT_EQ(s.ListExperiments("ns")->size(), 1u);
}

}  // namespace
}  // namespace gimel::store
