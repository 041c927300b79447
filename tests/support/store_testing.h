// Helpers shared by the Store backends' tests: status assertions and a blocking Add.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "hll/hll.h"
#include "store/store.h"

#define ASSERT_OK(expr)                                     \
  do {                                                      \
    const ::gimel::Status s_ = (expr);                      \
    ASSERT_TRUE(s_.ok()) << #expr << ": " << s_.ToString(); \
  } while (0)
#define EXPECT_OK(expr)                                     \
  do {                                                      \
    const ::gimel::Status s_ = (expr);                      \
    EXPECT_TRUE(s_.ok()) << #expr << ": " << s_.ToString(); \
  } while (0)

namespace gimel::store {

// prefix + decimal i (spelled out: GCC 12 -Wrestrict misfires on "literal" + std::string).
inline std::string Id(std::string_view prefix, int i) {
  std::string s(prefix);
  s.append(std::to_string(i));
  return s;
}

// The store `opened` holds, or null with a test failure saying why it did not open.
inline std::unique_ptr<Store> OpenedOrNull(Result<std::unique_ptr<Store>> opened) {
  EXPECT_TRUE(opened.ok()) << opened.status().ToString();
  return opened.ok() ? std::move(opened).value() : nullptr;
}

// The standalone redis store on a test redis-server: its port and password, and short timeouts,
// so that the failure tests finish fast.
inline StoreOptions RedisTestOptions(int port, const std::string& password) {
  StoreOptions o;
  o.kind = StoreOptions::Kind::kRedis;
  o.redis.port = port;
  o.redis.password = password;
  o.redis.connect_timeout_ms = 500;
  o.redis.command_timeout_ms = 500;
  return o;
}

// Adds one event and waits for its callback. (Store::AddSync lives in gimel_store, which the
// backend libraries' tests do not link.)
inline Status Add(Store& s, std::string_view ns, std::string_view exp, std::string_view event,
                  std::string_view variant, std::string_view uuid) {
  std::promise<Status> done;
  auto f = done.get_future();
  s.Add({ns, exp, event, variant, uuid}, [&done](Status st) { done.set_value(std::move(st)); });
  return f.get();
}

// Adds threads × per_thread participate events to (ns, exp) from `threads` threads at once
// (uuid "T-I", variant "vN" with N = I % variants), waits for every callback, and checks that
// every Add succeeded and that each counter holds exactly the registers of a local HLL of its
// uuids: no acknowledged event is missing, none is counted twice.
inline void ExpectConcurrentAddsAllLand(Store& store, const std::string& ns, const std::string& exp,
                                        int threads, int per_thread, int variants) {
  auto uuid = [](int t, int i) { return std::to_string(t) + "-" + std::to_string(i); };
  auto variant = [variants](int i) { return "v" + std::to_string(i % variants); };
  std::atomic<int> ok{0};
  std::atomic<int> pending{threads * per_thread};
  std::promise<void> all_done;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        store.Add({ns, exp, "participate", variant(i), uuid(t, i)}, [&](Status s) {
          if (s.ok()) ok.fetch_add(1);
          if (pending.fetch_sub(1) == 1) all_done.set_value();
        });
      }
    });
  }
  for (auto& w : workers) w.join();
  ASSERT_EQ(all_done.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(ok.load(), threads * per_thread);
  auto read = store.ReadExperiment(ns, exp);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), static_cast<size_t>(variants));
  for (const Counter& c : *read) {
    std::string expected = hll::Empty();
    for (int t = 0; t < threads; ++t) {
      for (int i = 0; i < per_thread; ++i) {
        if (variant(i) == c.variant) hll::Add(&expected, uuid(t, i));
      }
    }
    std::array<uint8_t, hll::kRegisters> want{};
    std::array<uint8_t, hll::kRegisters> got{};
    ASSERT_TRUE(hll::DecodeRegisters(expected, want).ok());
    ASSERT_TRUE(hll::DecodeRegisters(c.hll, got).ok());
    EXPECT_EQ(want, got) << c.variant;
  }
}

}  // namespace gimel::store
