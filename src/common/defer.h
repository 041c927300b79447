// Handing work to other threads in batches.
//
// A store completes events on its own threads (the embedded writer, the redis pipeline
// workers), a group commit or a pipeline of them at a time, and each completion is a reply
// for an I/O thread. Handed over one by one, every reply is a post to that thread's queue and
// may wake it: with the I/O thread idle, it wakes, writes one response, sleeps, and is woken
// again by the next completion of the same batch. With a DeferScope open around the
// completions, the work for each target is gathered and handed over once, when the scope
// closes.
//
//   {
//     DeferScope scope;
//     for (auto& op : batch) op.done(status);  // replies call Defer(target, task)
//   }                                          // one Deliver per target
//
// Thread-safety: the scope and what Defer gathers belong to the calling thread.
#pragma once

#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace gimel {

using DeferredTask = std::function<void()>;

// Where deferred tasks go: Deliver runs on the thread that closes the scope, with the tasks in
// the order they were deferred, and must hand them to the target's thread without blocking
// or throwing.
class DeferTarget {
 public:
  virtual ~DeferTarget() = default;
  virtual void Deliver(std::vector<DeferredTask> tasks) = 0;
};

// Gathers the Defer calls of this thread while it is open; nested scopes belong to the
// outermost one, which delivers when it closes.
class DeferScope {
 public:
  DeferScope();
  ~DeferScope();
  DeferScope(const DeferScope&) = delete;
  DeferScope& operator=(const DeferScope&) = delete;
};

// With a DeferScope open on this thread, queues `task` for `target` and returns true (the
// scope keeps `target` alive until it delivers). Otherwise returns false and leaves `task`
// untouched: the caller hands it over itself.
bool Defer(const std::shared_ptr<DeferTarget>& target, DeferredTask& task);

}  // namespace gimel
