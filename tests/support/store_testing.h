// Helpers shared by the Store backends' tests: status assertions and a blocking Add.
#pragma once

#include <gtest/gtest.h>

#include <future>
#include <string_view>

#include "common/status.h"
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

// Adds one event and waits for its callback. (Store::AddSync lives in gimel_store, which the
// backend libraries' tests do not link.)
inline Status Add(Store& s, std::string_view ns, std::string_view exp, std::string_view event,
                  std::string_view variant, std::string_view uuid) {
  std::promise<Status> done;
  auto f = done.get_future();
  s.Add({ns, exp, event, variant, uuid}, [&done](Status st) { done.set_value(std::move(st)); });
  return f.get();
}

}  // namespace gimel::store
