#include "common/defer.h"

namespace gimel {
namespace {

struct Pending {
  std::shared_ptr<DeferTarget> target;
  std::vector<DeferredTask> tasks;
};

struct ThreadState {
  int depth = 0;
  std::vector<Pending> pending;  // one entry per target, in order of first use
};

thread_local ThreadState state;

}  // namespace

DeferScope::DeferScope() { ++state.depth; }

DeferScope::~DeferScope() {
  if (--state.depth > 0) return;
  // A Deliver may complete work that defers again (there is no scope now: it is handed over
  // directly), so take the list first.
  std::vector<Pending> pending = std::move(state.pending);
  state.pending.clear();
  for (Pending& p : pending) p.target->Deliver(std::move(p.tasks));
}

bool Defer(const std::shared_ptr<DeferTarget>& target, DeferredTask& task) {
  if (state.depth == 0) return false;
  for (Pending& p : state.pending) {
    if (p.target == target) {
      p.tasks.push_back(std::move(task));
      return true;
    }
  }
  state.pending.push_back(Pending{target, {}});
  state.pending.back().tasks.push_back(std::move(task));
  return true;
}

}  // namespace gimel
