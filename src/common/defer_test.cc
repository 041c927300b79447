#include "common/defer.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace gimel {
namespace {

// Records each delivery (how many tasks) and runs the tasks.
class Recorder final : public DeferTarget {
 public:
  void Deliver(std::vector<DeferredTask> tasks) override {
    deliveries.push_back(tasks.size());
    for (const DeferredTask& t : tasks) t();
  }
  std::vector<size_t> deliveries;
};

TEST(Defer, WithoutAScopeTheCallerKeepsTheTask) {
  auto target = std::make_shared<Recorder>();
  int ran = 0;
  DeferredTask task = [&ran] { ++ran; };
  EXPECT_FALSE(Defer(target, task));
  ASSERT_TRUE(task);  // untouched: the caller still has it
  task();
  EXPECT_EQ(ran, 1);
  EXPECT_TRUE(target->deliveries.empty());
}

TEST(Defer, OneDeliveryPerTargetInOrderWhenTheScopeCloses) {
  auto a = std::make_shared<Recorder>();
  auto b = std::make_shared<Recorder>();
  std::string order;
  {
    DeferScope scope;
    for (char c : std::string("abAbaB")) {
      DeferredTask task = [&order, c] { order.push_back(c); };
      ASSERT_TRUE(Defer(c == 'A' || c == 'B' ? b : a, task));
    }
    EXPECT_TRUE(a->deliveries.empty());
    EXPECT_TRUE(order.empty());
  }
  EXPECT_EQ(a->deliveries, std::vector<size_t>{4});
  EXPECT_EQ(b->deliveries, std::vector<size_t>{2});
  // Targets are delivered in order of first use, each target's tasks in order.
  EXPECT_EQ(order, "abbaAB");
}

TEST(Defer, NestedScopesDeliverOnceAtTheOutermost) {
  auto target = std::make_shared<Recorder>();
  int ran = 0;
  {
    DeferScope outer;
    {
      DeferScope inner;
      DeferredTask t = [&ran] { ++ran; };
      ASSERT_TRUE(Defer(target, t));
    }
    EXPECT_EQ(ran, 0);
    DeferredTask t = [&ran] { ++ran; };
    ASSERT_TRUE(Defer(target, t));
  }
  EXPECT_EQ(ran, 2);
  EXPECT_EQ(target->deliveries, std::vector<size_t>{2});
  // Closed: nothing is gathered any more.
  DeferredTask t = [] {};
  EXPECT_FALSE(Defer(target, t));
}

TEST(Defer, TheScopeKeepsItsTargetsAlive) {
  std::weak_ptr<Recorder> weak;
  int ran = 0;
  {
    DeferScope scope;
    auto target = std::make_shared<Recorder>();
    weak = target;
    DeferredTask t = [&ran] { ++ran; };
    ASSERT_TRUE(Defer(target, t));
    target.reset();
    EXPECT_FALSE(weak.expired());
  }
  EXPECT_EQ(ran, 1);
  EXPECT_TRUE(weak.expired());
}

TEST(Defer, ScopesArePerThread) {
  auto target = std::make_shared<Recorder>();
  DeferScope scope;
  bool deferred_elsewhere = true;
  std::thread([&] {
    DeferredTask t = [] {};
    deferred_elsewhere = Defer(target, t);
  }).join();
  EXPECT_FALSE(deferred_elsewhere);
}

// A task delivered at the end of a scope that defers again is not lost: there is no scope
// any more, so the caller hands it over itself.
TEST(Defer, DeferringDuringDeliveryIsNotGathered) {
  auto inner = std::make_shared<Recorder>();
  auto outer = std::make_shared<Recorder>();
  bool gathered = true;
  {
    DeferScope scope;
    DeferredTask t = [&] {
      DeferredTask again = [] {};
      gathered = Defer(inner, again);
    };
    ASSERT_TRUE(Defer(outer, t));
  }
  EXPECT_FALSE(gathered);
  EXPECT_TRUE(inner->deliveries.empty());
}

}  // namespace
}  // namespace gimel
