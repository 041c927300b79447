#include "common/loop.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace gimel {
namespace {

class Recorder final : public LoopLocal {
 public:
  Recorder(std::string name, std::vector<std::string>* log) : name_(std::move(name)), log_(log) {}
  ~Recorder() override { log_->push_back("destroy " + name_); }
  void OnLoopExit() override {
    log_->push_back("exit " + name_ + (Loop::Current() != nullptr ? " (current)" : ""));
  }

 private:
  std::string name_;
  std::vector<std::string>* log_;
};

TEST(Loop, IsCurrentOnItsThreadOnlyWhileItLives) {
  boost::asio::io_context context;
  EXPECT_EQ(Loop::Current(), nullptr);
  {
    Loop loop(context);
    EXPECT_EQ(Loop::Current(), &loop);
    EXPECT_EQ(&loop.context(), &context);
    Loop* elsewhere = &loop;
    std::thread([&elsewhere] { elsewhere = Loop::Current(); }).join();
    EXPECT_EQ(elsewhere, nullptr);
    {
      boost::asio::io_context inner_context;
      Loop inner(inner_context);
      EXPECT_EQ(Loop::Current(), &inner);
    }
    EXPECT_EQ(Loop::Current(), &loop);
  }
  EXPECT_EQ(Loop::Current(), nullptr);
}

TEST(Loop, KeysAreNeverReused) {
  const uint64_t a = Loop::NewKey();
  const uint64_t b = Loop::NewKey();
  EXPECT_NE(a, b);
  EXPECT_NE(a, 0u);
}

TEST(Loop, LocalsAreFoundByKeyAndToldWhenTheLoopEndsNewestFirst) {
  std::vector<std::string> log;
  const uint64_t k1 = Loop::NewKey();
  const uint64_t k2 = Loop::NewKey();
  const uint64_t k3 = Loop::NewKey();
  {
    boost::asio::io_context context;
    Loop loop(context);
    EXPECT_EQ(loop.Find(k1), nullptr);
    LoopLocal* first = loop.Set(k1, std::make_shared<Recorder>("one", &log));
    LoopLocal* second = loop.Set(k2, std::make_shared<Recorder>("two", &log));
    EXPECT_EQ(loop.Find(k1), first);
    EXPECT_EQ(loop.Find(k2), second);
    loop.Set(k3, std::make_shared<Recorder>("three", &log));
    loop.Erase(k3);  // dropped without OnLoopExit
    EXPECT_EQ(loop.Find(k3), nullptr);
    EXPECT_EQ(log, std::vector<std::string>{"destroy three"});
    // Replacing drops the old one.
    loop.Set(k2, std::make_shared<Recorder>("two again", &log));
    EXPECT_EQ(log.back(), "destroy two");
  }
  EXPECT_EQ(log,
            (std::vector<std::string>{"destroy three", "destroy two", "exit two again (current)",
                                      "exit one (current)", "destroy two again", "destroy one"}));
}

}  // namespace
}  // namespace gimel
