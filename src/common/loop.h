// The event loop an I/O thread runs, and what lives on it.
//
// Each of the HTTP server's I/O threads runs one io_context (http/server.h) and makes a Loop for
// it. Code that a request handler calls on that thread finds it with Loop::Current() and can
// keep per-thread state driven by the same event loop: the redis store keeps one connection per
// I/O thread (store/redis_loop.h), so an event's round trip to Redis needs no other thread.
//
//   if (Loop* loop = Loop::Current()) {
//     auto* conn = static_cast<MyConn*>(loop->Find(key_));
//     if (conn == nullptr) conn = static_cast<MyConn*>(loop->Set(key_, MakeConn(loop)));
//     conn->Send(...);                        // its handlers run on this thread
//   }
//
// Lifetime: a Loop holds its locals (shared_ptr: their pending handlers may hold them too).
// When the thread has stopped running the io_context (no handler of it runs again), the Loop
// calls OnLoopExit on each local, on that thread, and drops them; the io_context is destroyed
// later, with any handlers still queued in it.
//
// Thread-safety: a Loop and its locals' registration belong to its thread; a LoopLocal's own
// methods say what other threads may call.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace gimel {

class LoopLocal {
 public:
  virtual ~LoopLocal() = default;
  // Called on the loop's thread after the loop stopped running, before the Loop drops it.
  virtual void OnLoopExit() = 0;
};

class Loop {
 public:
  // Makes this the calling thread's Current() loop until destroyed.
  explicit Loop(boost::asio::io_context& context);
  // Calls OnLoopExit on the locals (newest first) and drops them; restores the previous
  // Current(). REQUIRES: on the constructing thread, after it stopped running the context.
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // The loop the calling thread runs, or nullptr (not an I/O thread).
  static Loop* Current();

  // A key never returned before in this process, for Find / Set / Erase.
  static uint64_t NewKey();

  boost::asio::io_context& context() const { return context_; }

  // The local stored under `key`, or nullptr.
  LoopLocal* Find(uint64_t key) const {
    for (const auto& [k, local] : locals_) {
      if (k == key) return local.get();
    }
    return nullptr;
  }

  // Stores `local` under `key` (replacing any) and returns it.
  LoopLocal* Set(uint64_t key, std::shared_ptr<LoopLocal> local);

  // Drops the local under `key`, if any (without calling OnLoopExit).
  void Erase(uint64_t key);

 private:
  boost::asio::io_context& context_;
  Loop* const previous_;
  std::vector<std::pair<uint64_t, std::shared_ptr<LoopLocal>>> locals_;
};

}  // namespace gimel
