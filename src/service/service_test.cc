#include "service/service.h"

#include <gtest/gtest.h>

#include <future>
#include <set>
#include <string>
#include <vector>

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
  EXPECT_EQ(GoalsJson(*service_.Experiment("", "only"), nullptr), "[]");
}

// The report writer's text is what nlohmann::json would write for the same document: parsing
// and dumping it again gives the same bytes (key order, escaping), whatever the names hold.
TEST(ReportJson, IsWhatNlohmannWritesForTheSameDocument) {
  static constexpr char kControl[] = "nul\0ctl\x01\x1f del\x7f";  // with its NUL byte
  const std::string names[] = {"plain",
                               "quote \" backslash \\ slash /",
                               "tab\tnl\ncr\rbs\bff\f",
                               std::string(kControl, sizeof kControl - 1),
                               "grün ✓ 🔵",
                               "bad \xff utf-8 \xc3"};
  std::vector<ExperimentReport> reports;
  for (const std::string& name : names) {
    ExperimentReport r;
    r.experiment = name;
    r.goals.push_back({name, {{name, 3, 1000}, {"b", 18446744073709551615u, 0}}});
    r.goals.push_back({"empty", {}});
    reports.push_back(r);
  }
  reports.push_back({"no goals", {}});
  using nlohmann::json;
  const std::string scope = "a,\"b\"";
  StatsRequest stats;
  StatsRequest bad_baseline;
  bad_baseline.baseline = "no such variant";
  const std::vector<const StatsRequest*> requests = {nullptr, &stats, &bad_baseline};
  for (const StatsRequest* s : requests) {
    for (const std::string* raw_scope : {static_cast<const std::string*>(nullptr), &scope}) {
      const std::string text = ExperimentsJson(reports, raw_scope, s);
      const json doc = json::parse(text);
      EXPECT_EQ(doc.dump(), text);
      ASSERT_EQ(doc.size(), reports.size() + 1);
      EXPECT_EQ(doc[0]["meta"]["scope"], raw_scope ? json(scope) : json(nullptr));
      const json& goal = doc[2]["goals"][0];
      EXPECT_EQ(doc[2]["experiment"], names[1]);
      EXPECT_EQ(goal["results"][1]["successes"], 18446744073709551615u);
      EXPECT_EQ(goal.contains("srm"), s == &stats);
      EXPECT_EQ(goal["results"][0].contains("stats"), s == &stats);
      EXPECT_EQ(goal.contains("stats_error"), s == &bad_baseline);
      EXPECT_EQ(doc[6]["goals"][0]["goal"], "bad \xef\xbf\xbd utf-8 \xef\xbf\xbd");
      const std::string goals = GoalsJson(reports[1], s);
      EXPECT_EQ(json::parse(goals).dump(), goals);
      EXPECT_EQ(json::parse(goals), doc[2]["goals"]);
    }
  }
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

// A MemoryStore that records the batches Service reads with ReadExperiments (its default:
// ReadExperiment one by one) and fails ReadExperiment for the experiments in `broken`.
class RecordingStore final : public store::Store {
 public:
  void Add(const store::TrackEvent& event, store::AddCallback done) override {
    inner_.Add(event, std::move(done));
  }
  Result<std::vector<std::string>> ListNamespaces() override { return inner_.ListNamespaces(); }
  Result<std::vector<std::string>> ListExperiments(std::string_view ns) override {
    return inner_.ListExperiments(ns);
  }
  Result<std::vector<store::Counter>> ReadExperiment(std::string_view ns,
                                                     std::string_view experiment) override {
    ++single_reads;
    if (broken.count(std::string(experiment))) {
      return Status::Corruption("broken " + std::string(experiment));
    }
    return inner_.ReadExperiment(ns, experiment);
  }
  Result<std::vector<std::vector<store::Counter>>> ReadExperiments(
      std::string_view ns, const std::vector<std::string>& experiments) override {
    batches.push_back(experiments.size());
    return Store::ReadExperiments(ns, experiments);
  }
  Status DeleteExperiment(std::string_view ns, std::string_view experiment) override {
    return inner_.DeleteExperiment(ns, experiment);
  }
  Status MergeCounter(std::string_view ns, std::string_view experiment, std::string_view event,
                      std::string_view variant, std::string_view hll) override {
    return inner_.MergeCounter(ns, experiment, event, variant, hll);
  }
  Status Health() override { return Status::Ok(); }
  std::string_view name() const override { return "recording"; }

  std::vector<size_t> batches;  // sizes of the ReadExperiments calls
  int single_reads = 0;         // ReadExperiment calls
  std::set<std::string> broken;

 private:
  store::MemoryStore inner_;
};

class ServiceBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // 300 experiments, added in reverse name order; experiment i has i % 4 + 1 participants
    // per variant and i % 3 clicks on "red".
    for (int i = 299; i >= 0; --i) {
      const std::string exp = Name(i);
      for (int u = 0; u <= i % 4; ++u) {
        ASSERT_TRUE(
            store_.AddSync({"alephbet", exp, "participate", "red", "r" + std::to_string(u)}).ok());
        ASSERT_TRUE(
            store_.AddSync({"alephbet", exp, "participate", "blue", "b" + std::to_string(u)}).ok());
      }
      for (int u = 0; u < i % 3; ++u) {
        ASSERT_TRUE(
            store_.AddSync({"alephbet", exp, "clicked", "red", "r" + std::to_string(u)}).ok());
      }
    }
    store_.batches.clear();
    store_.single_reads = 0;
  }
  static std::string Name(int i) {
    std::string s = std::to_string(i);
    return "exp:" + std::string(3 - s.size(), '0') + s;
  }
  std::string Dump(const std::vector<ExperimentReport>& reports) {
    return ExperimentsJson(reports, nullptr, nullptr);
  }

  RecordingStore store_;
  Service service_{&store_, ServiceOptions{}};
};

TEST_F(ServiceBatchTest, ExperimentsReadsInBatchesAndAnswersAsOneByOne) {
  auto all = service_.Experiments("", nullptr);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  // Two ReadExperiments calls for 300 experiments (service.cc reads 256 at a time).
  EXPECT_EQ(store_.batches, (std::vector<size_t>{256, 44}));
  ASSERT_EQ(all->size(), 300u);
  std::vector<ExperimentReport> one_by_one;
  for (int i = 0; i < 300; ++i) {
    EXPECT_EQ((*all)[i].experiment, Name(i));  // name order
    auto report = service_.Experiment("", Name(i));
    ASSERT_TRUE(report.ok());
    one_by_one.push_back(std::move(report).value());
  }
  EXPECT_EQ(Dump(*all), Dump(one_by_one));
  const GoalReport& g = (*all)[7].goals.at(0);  // i = 7: 4 participants, 1 click on red
  EXPECT_EQ(g.goal, "clicked");
  ASSERT_EQ(g.results.size(), 2u);
  EXPECT_EQ(g.results[1].label, "red");
  EXPECT_EQ(g.results[1].successes, 1u);
  EXPECT_EQ(g.results[1].trials, 4u);

  // A scope keeps its order, duplicates and unknown experiments (empty goals).
  const std::vector<std::string> scope = {Name(5), "unknown", Name(1), Name(5)};
  auto scoped = service_.Experiments("", &scope);
  ASSERT_TRUE(scoped.ok());
  ASSERT_EQ(scoped->size(), 4u);
  EXPECT_EQ(Dump(*scoped),
            Dump({(*all)[5], ExperimentReport{"unknown", {}}, (*all)[1], (*all)[5]}));
  const std::vector<std::string> empty;
  auto nothing = service_.Experiments("", &empty);
  ASSERT_TRUE(nothing.ok());
  EXPECT_TRUE(nothing->empty());
}

TEST_F(ServiceBatchTest, ExperimentsFailsWithTheFirstFailingExperimentsError) {
  store_.broken = {Name(280), Name(100)};
  auto all = service_.Experiments("", nullptr);
  ASSERT_FALSE(all.ok());
  EXPECT_TRUE(all.status().IsCorruption());
  EXPECT_EQ(all.status().message(), "broken " + Name(100));
  EXPECT_EQ(store_.batches, (std::vector<size_t>{256}));  // stops at the failing batch
}

TEST_F(ServiceBatchTest, MigrateReadsInBatchesAndCopiesEverything) {
  store::MemoryStore dest;
  auto stats = Migrate(store_, dest);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->namespaces, 1u);
  EXPECT_EQ(stats->experiments, 300u);
  EXPECT_EQ(stats->counters, 300u * 2 + 200);  // clicks on 2 of every 3 experiments
  EXPECT_EQ(store_.batches, (std::vector<size_t>{256, 44}));
  Service copy(&dest, ServiceOptions{});
  EXPECT_EQ(Dump(*copy.Experiments("", nullptr)), Dump(*service_.Experiments("", nullptr)));
  store_.broken = {Name(3)};
  EXPECT_TRUE(Migrate(store_, dest).status().IsCorruption());
}

}  // namespace
}  // namespace gimel::service
