#!/usr/bin/env bash
# bench/profile.sh — where gimel's CPU goes under the track load of bench/run.sh.
#
#   bench/profile.sh [embedded|redis|experiments|experiments-redis] [SECONDS]   (default: embedded 8)
#
# Starts gimel (and redis-server for "redis") from build/, drives GET /track with wrk and
# bench/track.lua, and samples the gimel process:
#   - with perf (linux-perf) when it can sample (`perf record -e cpu-clock` works even where
#     hardware counters such as `perf stat -e instructions` are not available): flat profile by
#     shared object and by symbol, and a caller graph (DWARF unwinding);
#   - otherwise with valgrind --tool=callgrind on a short, low-rate run.
# "experiments[-redis]" seeds 10,000 counters (100 events each) and profiles GET /experiments.
# Prints the reports and keeps them (and perf.data) in a directory it names at the end.
# Every process started here is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$ROOT/bench"
WHAT="${1:-embedded}"
SECS="${2:-8}"
GIMEL="$ROOT/build/src/cli/gimel"
[[ -x "$GIMEL" ]] || { echo "profile.sh: build first (scripts/build.sh build)" >&2; exit 1; }
IO_THREADS="${GIMEL_BENCH_IO_THREADS:-1}"
CONNS="${GIMEL_BENCH_CONNS:-32}"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/gimel-profile.XXXXXX")"
PIDS=()
cleanup() {
  local rc=$? pid i
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  echo "profile output kept in $OUT"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port() { python3 "$BENCH/tools.py" port; }
extra=""
if [[ $WHAT == *redis ]]; then
  RP=$(port)
  redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$OUT" \
    --daemonize no >"$OUT/redis.log" 2>&1 &
  PIDS+=($!)
  for ((i = 0; i < 100; i++)); do redis-cli -p "$RP" ping >/dev/null 2>&1 && break; sleep 0.1; done
  extra=", \"store\": \"redis\", \"redis\": {\"host\": \"127.0.0.1\", \"port\": $RP}"
fi
GP=$(port)
cat >"$OUT/config.json" <<EOF
{"listen": "127.0.0.1:$GP", "api_key": "bench-api-key", "sync": true, "io_threads": $IO_THREADS,
 "limits": {"max_experiments_per_namespace": 100000}$extra}
EOF
URL="http://127.0.0.1:$GP"

use_perf=0
if command -v perf >/dev/null 2>&1 &&
   perf record -q -e cpu-clock -o "$OUT/probe.data" -- true >/dev/null 2>&1; then
  use_perf=1
fi
rm -f "$OUT/probe.data"

launch=("$GIMEL" serve --config "$OUT/config.json" --data-dir "$OUT/data")
if ((!use_perf)); then
  command -v valgrind >/dev/null || { echo "profile.sh: neither perf nor valgrind usable" >&2; exit 1; }
  launch=(valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" "${launch[@]}")
fi
"${launch[@]}" >"$OUT/gimel.log" 2>&1 &
GPID=$!
PIDS+=("$GPID")
for ((i = 0; i < 600; i++)); do
  grep -q "gimel listening on" "$OUT/gimel.log" 2>/dev/null && break
  kill -0 "$GPID" 2>/dev/null || { cat "$OUT/gimel.log" >&2; exit 1; }
  sleep 0.1
done

load() {  # the load being profiled, for $1 seconds
  if [[ $WHAT == experiments* ]]; then
    local end=$((SECONDS + $1))
    while ((SECONDS < end)); do
      python3 "$BENCH/tools.py" experiments "$URL" bench-report bench-api-key 5 >/dev/null
    done
  else
    wrk -t1 -c"$CONNS" -d"$1"s -s "$BENCH/track.lua" "$URL" | grep -E "Requests/sec|GIMEL"
  fi
}
if [[ $WHAT == experiments* ]]; then
  python3 "$BENCH/tools.py" seed "$URL" bench-report 0 10000 100
fi

if ((use_perf)); then
  load 1 >/dev/null
  ( load "$SECS" ) &
  LPID=$!
  PIDS+=("$LPID")
  perf record -q -F 499 -e cpu-clock --call-graph dwarf,8192 -p "$GPID" -o "$OUT/perf.data" \
    -- sleep "$SECS" 2>/dev/null || true
  wait "$LPID" || true
  perf report -i "$OUT/perf.data" --stdio --no-children -g none --sort dso 2>/dev/null |
    grep -v '^#' | grep -v '^$' | sed 's/ *$//' | head -12 >"$OUT/by-dso.txt" || true
  perf report -i "$OUT/perf.data" --stdio --no-children --sort dso,symbol -g none 2>/dev/null |
    grep -v '^#' | grep -v '^$' | sed -e 's/ *- *- *$//' -e 's/ *$//' | cut -c1-180 |
    head -50 >"$OUT/by-symbol.txt" || true
  perf report -i "$OUT/perf.data" --stdio --children --sort symbol -g caller,0.5,callee,function,percent \
    --percent-limit 3 2>/dev/null | head -400 >"$OUT/callers.txt" || true
  echo "samples: $(perf report -i "$OUT/perf.data" --stdio 2>/dev/null | grep -m1 '^# Samples' || true)"
  cat "$OUT/by-dso.txt" "$OUT/by-symbol.txt"
else
  # Under callgrind gimel is ~50x slower: a short, gentle run.
  CONNS=4 load 3
  kill -TERM "$GPID"; wait "$GPID" || true
  callgrind_annotate --inclusive=no "$OUT/callgrind.out" 2>/dev/null | head -60 >"$OUT/callgrind.txt"
  cat "$OUT/callgrind.txt"
fi
