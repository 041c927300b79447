// Redis Cluster routing for the redis-cluster store (internal to gimel_store_redis; the
// factory OpenRedisClusterStore is declared in store/redis_store.h).
//
// ClusterBackend routes every command by the hash slot of its key (keys::HashSlot) to the
// master serving it, through one PipelinePool per node (so commands for a node from all
// requests are pipelined together). It learns the slot map from CLUSTER SLOTS (from the seeds,
// then from any known node), and keeps it current:
//   - MOVED slot host:port → the slot is re-pointed at once, the command resent there, and a
//     full refresh is requested;
//   - ASK slot host:port → the command is resent to that node once, preceded by ASKING;
//   - TRYAGAIN (a multi-key command during a migration) → resent after a short delay;
//   - a node that cannot be reached → a refresh is requested; the command fails (kUnavailable);
//   - a background thread refreshes on request (at most every 100 ms) and every 30 s;
//   - after a refresh, the pools of nodes that are no longer masters (a crashed or demoted
//     master) are retired, and destroyed by that thread once no request uses them.
// Every command is single-key (or a single-slot MULTI/EXEC): gimel never sends CROSSSLOT.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/redis_conn.h"

namespace gimel::store::redis {

struct SlotRange {
  uint32_t first = 0;
  uint32_t last = 0;  // inclusive
  Endpoint master;
};

// Parses a CLUSTER SLOTS reply. A master with an empty or "?" host gets `asked`'s host.
// Error: kIOError on a malformed reply (or an error reply).
Result<std::vector<SlotRange>> ParseClusterSlots(const Value& reply, const Endpoint& asked);

struct Redirect {
  bool ask = false;  // ASK (one-off) rather than MOVED (permanent)
  uint32_t slot = 0;
  Endpoint to;
};

// Parses "MOVED 3999 127.0.0.1:6381" / "ASK 3999 :6381" (empty host → `from`'s host).
std::optional<Redirect> ParseRedirect(std::string_view error, const Endpoint& from);

}  // namespace gimel::store::redis
