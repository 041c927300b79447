// The redis and redis-cluster stores: the original Gimel's Redis keyspace (docs/key_schema.md,
// "Redis keyspace"; store/keys.h) over hiredis, with pipelined shared connections.
//
// Behaviour common to both (see store/redis_keyspace_store.h for the hot path):
//   - Add completes with OK only after the server acknowledged the PFADD (and, the first time
//     this process sees the counter, its index writes); otherwise with kUnavailable within about
//     connect + command timeout. Connections reconnect by themselves with backoff (50 ms
//     doubling to 1 s); a dead server is answered fast (kUnavailable) meanwhile.
//   - Every HLL read from Redis passes hll::Validate (kCorruption otherwise).
//   - Opening ignores SIGPIPE process-wide if it still has its default action (hiredis writes
//     to sockets with write(2); a server closing a connection must not kill gimel).
//
// Thread-safety: the stores are fully thread-safe (Store contract). Add callbacks run on the
// store's connection threads and must not block.
#pragma once

#include <memory>

#include "common/status.h"
#include "store/store.h"

namespace gimel::store {

// A standalone Redis from options.redis (host/port or unix_socket, username/password → AUTH,
// db → SELECT, timeouts, `connections` pipelined connections). Errors: kInvalidArgument (bad
// options, or SELECT refused), kPermissionDenied (AUTH refused: wrong password/user). An
// unreachable server is not an error: the store opens and answers kUnavailable until the server
// is back (Health() tells).
Result<std::unique_ptr<Store>> OpenRedisStore(const StoreOptions& options);

// A Redis Cluster from options.cluster_nodes ("host:port" seeds; at least one must answer
// CLUSTER SLOTS) and options.redis (username/password, timeouts, connections per node; db must
// be 0). Routes each key by CRC16 slot (hash tags honoured), follows MOVED (updating the slot
// map and refreshing the topology) and ASK (ASKING), refreshes the topology in the background.
// Errors: kInvalidArgument (no seeds, bad "host:port", db != 0), kPermissionDenied (AUTH
// refused), kUnavailable (no seed answers CLUSTER SLOTS).
Result<std::unique_ptr<Store>> OpenRedisClusterStore(const StoreOptions& options);

}  // namespace gimel::store
