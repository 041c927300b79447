#include "common/loop.h"

#include <algorithm>
#include <atomic>

namespace gimel {
namespace {

thread_local Loop* current = nullptr;
std::atomic<uint64_t> next_key{1};

}  // namespace

Loop::Loop(boost::asio::io_context& context) : context_(context), previous_(current) {
  current = this;
}

Loop::~Loop() {
  // A local's OnLoopExit may complete work whose callbacks look for this loop: keep it
  // current until every local has been told.
  for (auto it = locals_.rbegin(); it != locals_.rend(); ++it) it->second->OnLoopExit();
  while (!locals_.empty()) locals_.pop_back();  // newest first too
  current = previous_;
}

Loop* Loop::Current() { return current; }

uint64_t Loop::NewKey() { return next_key.fetch_add(1, std::memory_order_relaxed); }

LoopLocal* Loop::Set(uint64_t key, std::shared_ptr<LoopLocal> local) {
  Erase(key);
  locals_.emplace_back(key, std::move(local));
  return locals_.back().second.get();
}

void Loop::Erase(uint64_t key) {
  std::erase_if(locals_, [key](const auto& kv) { return kv.first == key; });
}

}  // namespace gimel
