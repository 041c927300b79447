#include "service/service.h"

#include <gtest/gtest.h>

#include <future>

#include "hll/hll.h"
#include "store/memory_store.h"

namespace gimel::service {
namespace {

class ServiceTest : public ::testing::Test {
 protected:
  Status Track(const std::string& exp, const std::string& event, const std::string& variant,
               const std::string& uuid, const std::string& ns = "") {
    Event e{ns, exp, variant, event, uuid};
    GIMEL_RETURN_IF_ERROR(service_.CheckEvent(e));
    std::promise<Status> p;
    service_.Track(e, [&p](Status s) { p.set_value(s); });
    return p.get_future().get();
  }
  store::MemoryStore store_;
  Service service_{&store_, ServiceOptions{}};
};

TEST_F(ServiceTest, ReportHasOneGoalPerNonParticipateEventAndZeroFilledSuccesses) {
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(Track("e", "participate", "red", "r" + std::to_string(i)).ok());
  for (int i = 0; i < 7; ++i)
    ASSERT_TRUE(Track("e", "participate", "blue", "b" + std::to_string(i)).ok());
  ASSERT_TRUE(Track("e", "clicked", "red", "r1").ok());
  ASSERT_TRUE(Track("e", "clicked", "red", "r1").ok());  // duplicate uuid
  ASSERT_TRUE(Track("e", "clicked", "red", "r2").ok());
  auto report = service_.Experiment("", "e");
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->goals.size(), 1u);
  const GoalReport& g = report->goals[0];
  EXPECT_EQ(g.goal, "clicked");
  ASSERT_EQ(g.results.size(), 2u);
  EXPECT_EQ(g.results[0].label, "blue");
  EXPECT_EQ(g.results[0].successes, 0u);
  EXPECT_EQ(g.results[0].trials, 7u);
  EXPECT_EQ(g.results[1].label, "red");
  EXPECT_EQ(g.results[1].successes, 2u);
  EXPECT_EQ(g.results[1].trials, 10u);
}

TEST_F(ServiceTest, ParticipateOnlyExperimentHasNoGoals) {
  ASSERT_TRUE(Track("only", "participate", "a", "1").ok());
  auto json = ExperimentToJson(*service_.Experiment("", "only"), nullptr);
  EXPECT_EQ(json.dump(), R"({"experiment":"only","goals":[]})");
}

TEST_F(ServiceTest, CheckEventNamesTheBadParameter) {
  Event e{"", "exp", "red", "participate", ""};
  Status s = service_.CheckEvent(e);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("'uuid'"), std::string::npos);
  e.uuid = "u";
  e.variant = "\xFF";
  EXPECT_NE(service_.CheckEvent(e).message().find("'variant'"), std::string::npos);
  e.variant = std::string(300, 'x');
  EXPECT_NE(service_.CheckEvent(e).message().find("longer than 256"), std::string::npos);
}

TEST_F(ServiceTest, ExperimentLimitRefusesNewExperimentsButNotKnownOnes) {
  Service limited(&store_, ServiceOptions{"alephbet", 256, 2});
  EXPECT_TRUE(limited.CheckEvent({"", "a", "v", "participate", "u"}).ok());
  EXPECT_TRUE(limited.CheckEvent({"", "b", "v", "participate", "u"}).ok());
  Status s = limited.CheckEvent({"", "c", "v", "participate", "u"});
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(limited.CheckEvent({"", "a", "v", "participate", "u2"}).ok());
  EXPECT_TRUE(limited.CheckEvent({"other", "c", "v", "participate", "u"}).ok());
}

TEST_F(ServiceTest, MigrateCopiesEveryCounterAndIsIdempotent) {
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(Track("e1", "participate", "a", std::to_string(i)).ok());
  ASSERT_TRUE(Track("e2", "goal", "b", "x", "ns2").ok());
  store::MemoryStore dest;
  auto first = Migrate(store_, dest);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->namespaces, 2u);
  EXPECT_EQ(first->counters, 2u);
  ASSERT_TRUE(Migrate(store_, dest).ok());
  auto counters = dest.ReadExperiment("alephbet", "e1");
  ASSERT_TRUE(counters.ok());
  ASSERT_EQ(counters->size(), 1u);
  EXPECT_EQ(*hll::Count((*counters)[0].hll), 50u);
  auto src = store_.ReadExperiment("alephbet", "e1");
  EXPECT_EQ(*hll::Count((*src)[0].hll), *hll::Count((*counters)[0].hll));
}

}  // namespace
}  // namespace gimel::service
