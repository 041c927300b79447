#!/usr/bin/env bash
# bench/run.sh — gimel's benchmark in one command (bench/README.md explains what and why).
#
#   bench/run.sh [--quick] [--no-build] [--out FILE] [--keep]
#
# Builds Release (scripts/build.sh build), then measures on this machine: nginx `return 204`
# (the HTTP ceiling), gimel on the embedded store, gimel on the redis store, redis-benchmark
# PFADD -P 1 (gimel's peak in three windows, each between two runs of its baseline),
# p99 at half of peak (each window followed by nginx, and for the synced embedded store by the
# disk alone, at the same rate), cost vs number of counters, /experiments latency, peak RSS,
# disk use after compaction, and the Google Benchmark micro-benchmarks; writes
# bench/RESULTS.md.
#
#   --quick     short runs (about 2-3 minutes after the build): a smoke test of the benchmark
#   --no-build  use the binaries already in build/
#   --out FILE  write the report there instead of bench/RESULTS.md
#   --keep      keep the work directory (logs, raw JSON, data dirs) and print its path
#
# Environment: GIMEL_BENCH_CONNS (default 256), GIMEL_BENCH_IO_THREADS (default nproc/2, at
# least 1; also nginx's worker_processes), GIMEL_BENCH_WRK_THREADS (default = io threads),
# GIMEL_BENCH_WAIT_QUIET (seconds to wait for an idle machine before measuring, default 120),
# GIMEL_BENCH_PEAK_WINDOWS (peak windows of each store, each followed by its baseline, default
# 3; --quick: 1), GIMEL_BENCH_HALF_WINDOWS (windows at half of peak per server, default 3;
# --quick: 1),
# GIMEL_BENCH_PIN (default 1: servers on the first nproc/2 CPUs, wrk and redis-benchmark on the
# others, with taskset; 0: no pinning).
#
# Every process started here is stopped on exit (trap EXIT). Never part of CI: a benchmark
# result never makes this script fail; only a broken setup (build, a server that will not
# start) does.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$ROOT/bench"
OUT="$BENCH/RESULTS.md"
QUICK=0
BUILD=1
KEEP=0
while (($#)); do
  case "$1" in
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    --keep) KEEP=1 ;;
    --out) OUT="$(realpath -m "$2")"; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

NPROC="$(nproc)"
HALF=$((NPROC / 2)); ((HALF >= 1)) || HALF=1
IO_THREADS="${GIMEL_BENCH_IO_THREADS:-$HALF}"
WRK_THREADS="${GIMEL_BENCH_WRK_THREADS:-$IO_THREADS}"
CONNS="${GIMEL_BENCH_CONNS:-256}"
# Pinning (GIMEL_BENCH_PIN, default 1 where taskset exists and there are >= 2 CPUs): the servers
# (nginx, gimel, redis-server) run on CPUs 0..HALF-1 and the load generators (wrk,
# redis-benchmark) on the others, so that a server and its load never compete for one core and
# the scheduler does not move them around; every server, nginx included, gets the same CPUs.
PIN="${GIMEL_BENCH_PIN:-1}"
SERVER_PIN=()
CLIENT_PIN=()
cpu_list() { if (($1 == $2)); then echo "$1"; else echo "$1-$2"; fi; }  # CPUs FIRST..LAST
SERVER_CPUS=$(cpu_list 0 $((HALF - 1)))
CLIENT_CPUS=$(cpu_list "$HALF" $((NPROC - 1)))
if [[ $PIN == 1 ]] && ((NPROC >= 2)) && command -v taskset >/dev/null 2>&1; then
  SERVER_PIN=(taskset -c "$SERVER_CPUS")
  CLIENT_PIN=(taskset -c "$CLIENT_CPUS")
else
  PIN=0
fi
WAIT_QUIET="${GIMEL_BENCH_WAIT_QUIET:-120}"
API_KEY="bench-api-key"
if ((QUICK)); then
  DUR=3 WARM=1 DUR_SCALE=2 SEED_PER=20 RSS_EVENTS=200000 EXP_RUNS=3 MIN_TIME=0.05 REPS=1 MODE=quick
  HALF_WINDOWS=1 PEAK_WINDOWS=1
  SCALE_COUNTERS=(10 1000 100000)
else
  DUR=10 WARM=2 DUR_SCALE=5 SEED_PER=100 RSS_EVENTS=1000000 EXP_RUNS=5 MIN_TIME=0.2 REPS=3 MODE=full
  HALF_WINDOWS=3 PEAK_WINDOWS=3
  SCALE_COUNTERS=(10 100 1000 10000 100000)
fi
HALF_WINDOWS="${GIMEL_BENCH_HALF_WINDOWS:-$HALF_WINDOWS}"
PEAK_WINDOWS="${GIMEL_BENCH_PEAK_WINDOWS:-$PEAK_WINDOWS}"
REPORT_COUNTERS=(100 1000 10000)
RSS_COUNTERS=1000

T_START=$(date +%s)
log() { printf '[bench %4ds] %s\n' $(($(date +%s) - T_START)) "$*"; }

# ---- processes: everything started is recorded and stopped on exit ---------------------------
PIDS=()
WORK=""
stop_pid() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [[ -n "$WORK" && -d "$WORK" ]]; then
    if ((KEEP)); then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- packages and build ----------------------------------------------------------------------
install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}
install_missing nginx-light wrk redis-server redis-tools python3 libbenchmark-dev

if ((BUILD)); then
  [[ -x "$ROOT/scripts/setup.sh" ]] && GIMEL_SETUP_BROWSER=0 "$ROOT/scripts/setup.sh"
  log "building Release: scripts/build.sh build"
  (cd "$ROOT" && scripts/build.sh build)
fi
GIMEL="$ROOT/build/src/cli/gimel"
BB="$ROOT/build/bench"
[[ -x "$GIMEL" ]] || { echo "run.sh: $GIMEL missing (build first)" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gimel-bench.XXXXXX")"
R="$WORK/results"
mkdir -p "$R"
TOOLS=(python3 "$BENCH/tools.py")
CMDS="$R/commands.txt"
# Records a command as run (work paths shown as $WORK, the repository as .).
log_cmd() { printf '%s\n' "$*" | sed -e "s|$WORK|\$WORK|g" -e "s|$ROOT/||g" >>"$CMDS"; }
log_cmd "# bench/run.sh $([[ $MODE == quick ]] && echo --quick)  (io_threads=$IO_THREADS, wrk -t$WRK_THREADS -c$CONNS, pinning: ${SERVER_PIN[*]:-none} for servers, ${CLIENT_PIN[*]:-none} for load generators)"

# ---- machine state ---------------------------------------------------------------------------
# Percentage of CPU time busy over one second (all cores), from /proc/stat.
cpu_busy() {
  local a b
  a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  local idle=$(((b[4] + b[5]) - (a[4] + a[5]))) total=0 i
  for ((i = 1; i < ${#a[@]}; i++)); do total=$((total + b[i] - a[i])); done
  ((total > 0)) || total=1
  echo $((100 * (total - idle) / total))
}
wait_quiet() {
  local busy waited=0
  busy=$(cpu_busy)
  while ((busy > 25 && waited < WAIT_QUIET)); do
    ((waited == 0)) && log "machine is ${busy}% busy (others' work); waiting up to ${WAIT_QUIET}s for it to calm down" >&2
    sleep 4; waited=$((waited + 5))
    busy=$(cpu_busy)
  done
  echo "$busy"
}
BUSY_START=$(wait_quiet)
# CPU accounting: machine busy ticks (/proc/stat user + nice + system + irq + softirq: a
# process's own times include the softirq work done in its context) minus the ticks of this
# script's tree (its own plus its waited-for children's) = what other processes used meanwhile.
stat_busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
stat_steal() { awk '/^cpu /{print $9}' /proc/stat; }
stat_total() { awk '/^cpu /{t = 0; for (i = 2; i <= 9; i++) t += $i; print t}' /proc/stat; }
self_ticks() { sed 's/.*) //' /proc/$$/stat | awk '{print $12 + $13 + $14 + $15}'; }
BUSY0=$(stat_busy) STEAL0=$(stat_steal) TOTAL0=$(stat_total) SELF0=$(self_ticks)
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
OTHERS="$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 >= 5 {printf "%s%s (%s%%)", sep, $2, $1; sep=", "}')"
# Load sampler: the highest 1-minute load average seen during the run.
(
  trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  while :; do
    cut -d' ' -f1 /proc/loadavg >>"$WORK/load.txt"
    sleep 5 & sp=$!
    wait "$sp"
  done
) &
PIDS+=($!)

# cpu_speed LABEL: the time of one fixed CPU loop on each CPU in turn (ms; LABEL and the times
# appended to CPU_SPEED for RESULTS.md). A shared VM's CPUs slow down and speed up, each on its
# own, by up to 2x for minutes at a time; this shows which CPU was slow when.
CPU_SPEED=""
cpu_speed() {
  local c ms out=""
  command -v taskset >/dev/null 2>&1 || return 0
  for ((c = 0; c < NPROC; c++)); do
    ms=$(taskset -c "$c" python3 -c 'import time
t = time.perf_counter()
x = 0
for i in range(3000000): x += i
print(round((time.perf_counter() - t) * 1000))' 2>/dev/null) || ms="?"
    out+="${out:+ / }$ms"
  done
  CPU_SPEED+="${CPU_SPEED:+; }$1: $out"
}

# ---- helpers ---------------------------------------------------------------------------------
free_port() { "${TOOLS[@]}" port; }

# CPU time (clock ticks) of the given processes.
cpu_ticks() {
  local t=0 pid f
  for pid in "$@"; do
    f=($(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null)) || continue
    ((${#f[@]} > 12)) && t=$((t + f[11] + f[12]))
  done
  echo "$t"
}
CLK_TCK="$(getconf CLK_TCK)"

# run_wrk NAME URL COUNTERS NAMESPACE SECONDS RATE PIDS...: one wrk run, JSON in $R/wrk-NAME.json
# (with the servers' CPU time per request when PIDS are given, and wrk's own).
run_wrk() {
  local name="$1" url="$2" counters="$3" ns="$4" dur="$5" rate="$6"
  shift 6
  local cmd=("${CLIENT_PIN[@]}" wrk -t"$WRK_THREADS" -c"$CONNS" -d"${dur}s" --timeout 10s -s "$BENCH/track.lua" "$url")
  [[ $name == warm* ]] || log_cmd "BENCH_COUNTERS=$counters BENCH_NAMESPACE=$ns BENCH_RATE=$rate BENCH_THREADS=$WRK_THREADS BENCH_CONNS=$CONNS ${cmd[*]}"
  local t0 t1
  rm -f "$WORK/wrk-cpu.json"
  t0=$(cpu_ticks "$@")
  BENCH_COUNTERS="$counters" BENCH_NAMESPACE="$ns" BENCH_RATE="$rate" BENCH_THREADS="$WRK_THREADS" BENCH_CONNS="$CONNS" \
    "${TOOLS[@]}" rusage "$WORK/wrk-cpu.json" "${cmd[@]}" >"$WORK/wrk-$name.txt" 2>&1 || true
  t1=$(cpu_ticks "$@")
  [[ $name == warm* ]] && return 0
  "${TOOLS[@]}" wrkjson "$WORK/wrk-$name.txt" >"$WORK/wrk.json" || true
  python3 - "$WORK/wrk.json" "$R/wrk-$name.json" "$((t1 - t0))" "$CLK_TCK" "$rate" "$WORK/wrk-cpu.json" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
ticks, hz, rate = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
if "requests" in d and d["requests"]:
    d["server_cpu_s"] = ticks / hz
    d["server_cpu_us_per_req"] = round(ticks / hz * 1e6 / d["requests"], 1)
    if os.path.exists(sys.argv[6]):  # wrk's own CPU (its start-up included) and how busy it was
        c = json.load(open(sys.argv[6]))
        cpu = c["user_s"] + c["sys_s"]
        d["client_cpu_us_per_req"] = round(cpu * 1e6 / d["requests"], 1)
        d["client_busy"] = round(cpu / (d["duration_us"] / 1e6), 2)
d["target_rate"] = rate
json.dump(d, open(sys.argv[2], "w"))
PY
  python3 - "$R/wrk-$name.json" "$name" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
if "rps" in d:
    print("  %-22s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d  server CPU %s us/req"
          "  wrk CPU %s us/req" % (
        sys.argv[2], d["rps"], d["lat_us"]["p50"] / 1e3, d["lat_us"]["p99"] / 1e3,
        d["errors_total"], d.get("server_cpu_us_per_req", "?"),
        d.get("client_cpu_us_per_req", "?")))
else:
    print("  %-22s no result: %s" % (sys.argv[2], d))
PY
}

rps_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("rps", 0))' "$1" 2>/dev/null || echo 0; }
# The rate a run was paced to (whole req/s; 0 if unpaced or missing).
rate_of() { python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1])).get("target_rate", 0)))' "$1" 2>/dev/null || echo 0; }

# half_load NAME URL PEAK_JSON PIDS...: rate-limited run at 50 % of the peak; one corrective
# re-run if the achieved rate is off by more than 10 %.
half_load() {
  local name="$1" url="$2" peak
  peak=$(rps_of "$3")
  shift 3
  [[ ${peak%.*} -gt 0 ]] || return 0
  local target rate achieved
  target=$(python3 -c "print(round($peak / 2))")
  rate=$target
  run_wrk "$name" "$url" 100 "bench-half" "$DUR" "$rate" "$@"
  achieved=$(rps_of "$R/wrk-$name.json")
  if python3 -c "import sys; sys.exit(0 if abs($achieved / $target - 1) > 0.1 and $achieved > 0 else 1)"; then
    rate=$(python3 -c "print(round($target * $target / $achieved))")
    log "half load: achieved $achieved req/s for $target wanted; re-running with rate $rate"
    run_wrk "$name" "$url" 100 "bench-half" "$DUR" "$rate" "$@"
  fi
}

# half_windows NAME URL PEAK_JSON PIDS...: the p99 at half of peak over HALF_WINDOWS windows of
# DUR seconds at the same rate, each followed by nginx (and disk_at_rate) at that rate: NAME
# (the rate is set and corrected there), then NAME-w2, NAME-w3... One window's p99 on a shared
# VM depends on which phase of the host it falls in (bench/README.md, "Method"); RESULTS.md
# shows every window and judges the target on their median.
half_windows() {
  local name="$1" url="$2" peak_json="$3" rate k
  shift 3
  half_load "$name" "$url" "$peak_json" "$@"
  nginx_at_rate "$name"
  disk_at_rate "$name"
  rate=$(rate_of "$R/wrk-$name.json")
  ((rate > 0)) || return 0
  for ((k = 2; k <= HALF_WINDOWS; k++)); do
    run_wrk "$name-w$k" "$url" 100 "bench-half" "$DUR" "$rate" "$@"
    nginx_at_rate "$name-w$k"
    disk_at_rate "$name-w$k"
  done
}

# disk_at_rate NAME: while DISK_FLOOR_DIR is set (the synced embedded store's windows), group
# commits of 100-byte events at the rate of the run NAME, by gimel_bench_disk_floor in that
# directory's file system, pinned like the servers (result disk-at-NAME): the least a store
# that acknowledges only durable events waits for this disk at that load, and how often the
# disk stalled (bench/README.md, "Method"). Its group commits start at least
# DISK_FLOOR_GAP_US apart or once DISK_FLOOR_EARLY events wait, as gimel's
# (StoreOptions::min_commit_interval_us and commit_early_events).
DISK_FLOOR_GAP_US=2000 DISK_FLOOR_EARLY=48
disk_at_rate() {
  local rate out="$R/disk-at-$1.json"
  [[ -n ${DISK_FLOOR_DIR:-} && -x $BB/gimel_bench_disk_floor ]] || return 0
  rate=$(rate_of "$R/wrk-$1.json")
  ((rate > 0)) || return 0
  log_cmd "${SERVER_PIN[*]} build/bench/gimel_bench_disk_floor $DISK_FLOOR_DIR $rate $DUR $DISK_FLOOR_GAP_US $DISK_FLOOR_EARLY"
  "${SERVER_PIN[@]}" "$BB/gimel_bench_disk_floor" "$DISK_FLOOR_DIR" "$rate" "$DUR" "$DISK_FLOOR_GAP_US" "$DISK_FLOOR_EARLY" \
    >"$out" 2>"$WORK/disk-at-$1.err" || { log "disk floor failed: $(cat "$WORK/disk-at-$1.err")"; echo '{}' >"$out"; }
  python3 - "$out" "disk-at-$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
if "p99_ms" in d:
    print("  %-22s %9.0f ev/s   p50 %6.2f ms  p99 %6.2f ms  syncs %d, longest %.2f ms, %d over 5 ms" % (
        sys.argv[2], d["rate"], d["p50_ms"], d["p99_ms"], d["syncs"], d["sync_max_ms"],
        d["syncs_over_5ms"]))
PY
}

# nginx_at_rate NAME: nginx paced to the rate the run NAME was paced to (result nginx-at-NAME):
# the tail this machine gives, at the same load and with the same client, to a server that
# stores nothing — the floor under gimel's "p99 at half of peak".
nginx_at_rate() {
  local rate
  [[ -n ${NGINX_PORT:-} ]] || return 0
  rate=$(rate_of "$R/wrk-$1.json")
  ((rate > 0)) || return 0
  run_wrk "nginx-at-$1" "http://127.0.0.1:$NGINX_PORT" 100 bench-half "$DUR" "$rate" "$NGINX_PID" "${NGINX_WORKERS[@]}"
}

# wait_log FILE TEXT PID: waits until TEXT appears in FILE (30 s), failing if PID dies.
wait_log() {
  local i
  for ((i = 0; i < 300; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || break
    sleep 0.1
  done
  echo "run.sh: server did not start; its log:" >&2
  cat "$1" >&2
  exit 1
}

# start_gimel NAME EXTRA_CONFIG [--data-dir DIR]: sets GIMEL_PID and GIMEL_URL.
start_gimel() {
  local name="$1" extra="$2"
  shift 2
  local port cfg="$WORK/$name.json"
  [[ -n $extra ]] || extra=', "sync": true'
  port=$(free_port)
  cat >"$cfg" <<EOF
{"listen": "127.0.0.1:$port", "api_key": "$API_KEY", "io_threads": $IO_THREADS,
 "limits": {"max_experiments_per_namespace": 100000}$extra}
EOF
  log_cmd "# $cfg: $(tr -d '\n' <"$cfg")"
  log_cmd "${SERVER_PIN[*]} build/src/cli/gimel serve --config $cfg $*"
  "${SERVER_PIN[@]}" "$GIMEL" serve --config "$cfg" "$@" >"$WORK/$name.log" 2>&1 &
  GIMEL_PID=$!
  PIDS+=("$GIMEL_PID")
  wait_log "$WORK/$name.log" "gimel listening on" "$GIMEL_PID"
  GIMEL_URL="http://127.0.0.1:$port"
}

vm_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# report_series STORE URL: seeds 100 -> 1k -> 10k counters in one namespace, timing
# /experiments at each size.
report_series() {
  local store="$1" url="$2" have=0 c
  for c in "${REPORT_COUNTERS[@]}"; do
    log_cmd "python3 bench/tools.py seed $url bench-report $have $c $SEED_PER"
    "${TOOLS[@]}" seed "$url" bench-report "$have" "$c" "$SEED_PER" >"$R/seed-$store-$c.json" ||
      log "seeding failed: $(cat "$R/seed-$store-$c.json")"
    have=$c
    log_cmd "python3 bench/tools.py experiments $url bench-report \$API_KEY $EXP_RUNS"
    "${TOOLS[@]}" experiments "$url" bench-report "$API_KEY" "$EXP_RUNS" >"$R/exp-$store-$c.json" || true
    echo "  /experiments $store $c counters: $(cat "$R/exp-$store-$c.json")"
  done
}

# track_series STORE URL BASELINE PIDS...: peak, half load and counters scaling. BASELINE is a
# command run with one argument (a result name) right after each peak window: PEAK_WINDOWS
# windows STORE, STORE-p2, ..., each followed by BASELINE after-STORE, after-STORE-p2, ...; each
# window's ratio uses the baseline measured just before it and the one just after it, so that
# the speed of the machine, which drifts by a third within minutes on a shared VM, is the same
# for both sides of the ratio, and RESULTS.md judges the target on the median of the windows'
# ratios. Half load is half of the median window's peak.
track_series() {
  local store="$1" url="$2" baseline="$3" c k name
  shift 3
  run_wrk warm-$store "$url" 100 bench-warm "$WARM" 0
  for ((k = 1; k <= PEAK_WINDOWS; k++)); do
    name=$store
    ((k == 1)) || name=$store-p$k
    run_wrk "$name" "$url" 100 bench "$DUR" 0 "$@"
    "$baseline" "after-$name"
  done
  half_windows "$store-half" "$url" "$R/wrk-$("${TOOLS[@]}" medianpeak "$R" "$store").json" "$@"
  for c in "${SCALE_COUNTERS[@]}"; do
    run_wrk "$store-c$c" "$url" "$c" "bench-c$c" "$DUR_SCALE" 0 "$@"
    # The same requests to nginx right after: what this client and machine give at this many
    # counters, so that the table shows whether a change with the counters is gimel's.
    if [[ $store == embedded ]]; then
      run_wrk "nginx-c$c" "http://127.0.0.1:$NGINX_PORT" "$c" "bench-c$c" "$DUR_SCALE" 0 \
        "$NGINX_PID" "${NGINX_WORKERS[@]}"
    fi
  done
}

# ---- 1. micro-benchmarks (first, on the quietest machine) ------------------------------------
cpu_speed start
log "micro-benchmarks"
for b in hll url api; do
  if [[ -x "$BB/gimel_bench_$b" ]]; then
    log_cmd "build/bench/gimel_bench_$b --benchmark_min_time=$MIN_TIME --benchmark_repetitions=$REPS --benchmark_format=json"
    "$BB/gimel_bench_$b" --benchmark_min_time="$MIN_TIME" --benchmark_repetitions="$REPS" \
      --benchmark_format=json \
      >"$R/micro-$b.json" 2>"$WORK/micro-$b.err" || log "gimel_bench_$b failed: $(tail -2 "$WORK/micro-$b.err")"
  else
    log "build/bench/gimel_bench_$b not built (libbenchmark-dev missing?): skipped"
  fi
done

# ---- 2. nginx: the HTTP ceiling --------------------------------------------------------------
log "nginx return 204"
NG="$WORK/nginx"
mkdir -p "$NG/tmp"
NGINX_PORT=$(free_port)
cat >"$NG/nginx.conf" <<EOF
worker_processes $IO_THREADS;
daemon off;
pid $NG/nginx.pid;
error_log $NG/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $NG/tmp/body;
  proxy_temp_path $NG/tmp/proxy;
  fastcgi_temp_path $NG/tmp/fastcgi;
  uwsgi_temp_path $NG/tmp/uwsgi;
  scgi_temp_path $NG/tmp/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /track { return 204; }
  }
}
EOF
log_cmd "# $NG/nginx.conf: worker_processes $IO_THREADS; access_log off; keepalive_requests 100000000; location /track { return 204; }"
log_cmd "${SERVER_PIN[*]} nginx -p $NG -e $NG/error.log -c $NG/nginx.conf"
NGINX_BIN="$(command -v nginx || echo /usr/sbin/nginx)"
"${SERVER_PIN[@]}" "$NGINX_BIN" -p "$NG" -e "$NG/error.log" -c "$NG/nginx.conf" >"$NG/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
for ((i = 0; i < 100; i++)); do
  curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/track" && break
  kill -0 "$NGINX_PID" 2>/dev/null || { cat "$NG/error.log" "$NG/stdout.log" >&2; exit 1; }
  sleep 0.1
done
NGINX_WORKERS=($(pgrep -P "$NGINX_PID" || true))
# nginx_run NAME: one measurement of nginx (results nginx, nginx-NAME...).
nginx_run() {
  local name="nginx${1:+-$1}"
  run_wrk "$name" "http://127.0.0.1:$NGINX_PORT" 100 bench "$DUR" 0 "$NGINX_PID" "${NGINX_WORKERS[@]}"
}
run_wrk warm-nginx "http://127.0.0.1:$NGINX_PORT" 100 bench "$WARM" 0
nginx_run
# nginx stays up (idle): it is measured again right after each gimel peak on the embedded store
# (the ratios use the runs just before and just after), and at the end to expose drift.

# ---- 3. gimel on the embedded store ----------------------------------------------------------
cpu_speed "before embedded"
log "gimel embedded: peak, half load, counters scaling, /experiments"
start_gimel embedded "" --data-dir "$WORK/data-embedded"
DISK_FLOOR_DIR="$WORK"
track_series embedded "$GIMEL_URL" nginx_run "$GIMEL_PID"
DISK_FLOOR_DIR=""
report_series embedded "$GIMEL_URL"
stop_pid "$GIMEL_PID"

log "gimel embedded with \"sync\": false (WAL written, not fsynced): peak, half load"
start_gimel embedded-nosync ', "sync": false' --data-dir "$WORK/data-embedded-nosync"
run_wrk warm-nosync "$GIMEL_URL" 100 bench-warm "$WARM" 0
nginx_run before-embedded-nosync
run_wrk embedded-nosync "$GIMEL_URL" 100 bench "$DUR" 0 "$GIMEL_PID"
nginx_run after-embedded-nosync
half_windows embedded-nosync-half "$GIMEL_URL" "$R/wrk-embedded-nosync.json" "$GIMEL_PID"
stop_pid "$GIMEL_PID"

# ---- 4. peak RSS and disk use (fresh embedded instance) --------------------------------------
log "gimel embedded: RSS after $RSS_EVENTS events over $RSS_COUNTERS counters, disk after compaction"
DATA_RSS="$WORK/data-rss"
start_gimel rss "" --data-dir "$DATA_RSS"
PER=$((RSS_EVENTS / RSS_COUNTERS))
log_cmd "python3 bench/tools.py seed $GIMEL_URL bench-rss 0 $RSS_COUNTERS $PER"
"${TOOLS[@]}" seed "$GIMEL_URL" bench-rss 0 "$RSS_COUNTERS" "$PER" >"$WORK/seed-rss.json" || true
HWM=$(vm_kb "$GIMEL_PID" VmHWM)
RSS=$(vm_kb "$GIMEL_PID" VmRSS)
"${TOOLS[@]}" experiments "$GIMEL_URL" bench-rss "$API_KEY" 1 >"$WORK/exp-rss.json" || true
HWM2=$(vm_kb "$GIMEL_PID" VmHWM)
log_cmd "grep -E 'VmHWM|VmRSS' /proc/\$GIMEL_PID/status"
python3 - "$WORK/seed-rss.json" "$R/rss.json" "$HWM" "$RSS" "$HWM2" "$RSS_COUNTERS" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
json.dump({"events": s.get("events", 0), "counters": int(sys.argv[6]),
           "events_per_s": s.get("events_per_s", 0), "vmhwm_kb": int(sys.argv[3]),
           "vmrss_kb": int(sys.argv[4]), "vmhwm_after_report_kb": int(sys.argv[5])},
          open(sys.argv[2], "w"))
PY
echo "  $(cat "$R/rss.json")"
stop_pid "$GIMEL_PID"
DU_BEFORE=$(du -sb "$DATA_RSS" | cut -f1)
log_cmd "du -sb $DATA_RSS; build/bench/gimel_bench_compact $DATA_RSS; du -sb $DATA_RSS"
if [[ -x "$BB/gimel_bench_compact" ]]; then
  "$BB/gimel_bench_compact" "$DATA_RSS" >"$WORK/compact.json" || echo '{}' >"$WORK/compact.json"
else
  echo '{}' >"$WORK/compact.json"
fi
DU_AFTER=$(du -sb "$DATA_RSS" | cut -f1)
python3 - "$WORK/compact.json" "$R/disk.json" "$DU_BEFORE" "$DU_AFTER" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["du_before"], d["du_after"] = int(sys.argv[3]), int(sys.argv[4])
json.dump(d, open(sys.argv[2], "w"))
PY
echo "  $(cat "$R/disk.json")"

# ---- 5. redis: redis-benchmark, then gimel on the redis store --------------------------------
# start_redis NAME: a fresh redis-server (no persistence); sets REDIS_PORT and REDIS_PID. Each
# of the two measurements gets its own: a server that has just answered redis-benchmark's 256
# connections gave gimel's half-load run a p99 about twice as high (1.6-4.1 ms against
# 1.4-2.5 ms in quick runs), even after FLUSHALL.
start_redis() {
  local name="$1"
  REDIS_PORT=$(free_port)
  mkdir -p "$WORK/$name"
  log_cmd "${SERVER_PIN[*]} redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no --dir $WORK/$name"
  "${SERVER_PIN[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK/$name" --daemonize no >"$WORK/$name.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  for ((i = 0; i < 100; i++)); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    kill -0 "$REDIS_PID" 2>/dev/null || { cat "$WORK/$name.log" >&2; exit 1; }
    sleep 0.1
  done
}

cpu_speed "before redis"
log "redis-server, redis-benchmark PFADD -P 1"
start_redis redis-rb
# Size the run to about $DUR seconds from a short calibration.
RB=("${CLIENT_PIN[@]}" redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$CONNS" -P 1 -r 100 --csv)
"${RB[@]}" -n 20000 PFADD 'bench:c:__rand_int__' '__rand_int__' >"$WORK/rb-cal.csv" 2>/dev/null || true
CAL=$("${TOOLS[@]}" rbcsv "$WORK/rb-cal.csv" | python3 -c 'import json,sys; print(int(json.load(sys.stdin).get("rps", 20000)))' || echo 20000)
RB_N=$((CAL * DUR))
((RB_N >= 20000)) || RB_N=20000
log_cmd "${RB[*]} -n $RB_N PFADD 'bench:c:__rand_int__' '__rand_int__'"
RB_PORT=$REDIS_PORT RB_PID=$REDIS_PID
# rb_run NAME: one redis-benchmark measurement on its own redis-server (results redis-benchmark,
# redis-benchmark-NAME...), with that server's CPU per request.
rb_run() {
  local name="redis-benchmark${1:+-$1}" t0 t1
  t0=$(cpu_ticks "$RB_PID")
  "${RB[@]}" -n "$RB_N" PFADD 'bench:c:__rand_int__' '__rand_int__' >"$WORK/$name.csv" 2>/dev/null || true
  t1=$(cpu_ticks "$RB_PID")
  "${TOOLS[@]}" rbcsv "$WORK/$name.csv" >"$WORK/rb.json" || true
  python3 - "$WORK/rb.json" "$R/$name.json" "$RB_N" "$((t1 - t0))" "$CLK_TCK" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["requests"] = int(sys.argv[3])
d["server_cpu_us_per_req"] = round(int(sys.argv[4]) / int(sys.argv[5]) * 1e6 / int(sys.argv[3]), 1)
json.dump(d, open(sys.argv[2], "w"))
PY
  echo "  $name: $(cat "$R/$name.json")"
}
rb_run
# Its server stays up (idle) for the measurement right after gimel's redis peak.

log "gimel redis: peak, half load, counters scaling, /experiments"
start_redis redis-gimel
start_gimel redis ", \"store\": \"redis\", \"redis\": {\"host\": \"127.0.0.1\", \"port\": $REDIS_PORT}"
track_series redis "$GIMEL_URL" rb_run "$GIMEL_PID" "$REDIS_PID"
stop_pid "$RB_PID"
report_series redis "$GIMEL_URL"
echo "{\"vmhwm_kb\": $(vm_kb "$GIMEL_PID" VmHWM)}" >"$R/rss-redis.json"
stop_pid "$GIMEL_PID"
stop_pid "$REDIS_PID"

log "nginx return 204 again (drift check)"
run_wrk nginx-end "http://127.0.0.1:$NGINX_PORT" 100 bench "$DUR" 0 "$NGINX_PID" "${NGINX_WORKERS[@]}"
stop_pid "$NGINX_PID"
cpu_speed end

# ---- 6. report -------------------------------------------------------------------------------
T_END=$(date +%s)
BUSY1=$(stat_busy) STEAL1=$(stat_steal) TOTAL1=$(stat_total) SELF1=$(self_ticks)
OTHER_TICKS=$(((BUSY1 - BUSY0) - (SELF1 - SELF0)))
((OTHER_TICKS >= 0)) || OTHER_TICKS=0
COMMIT="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
# (the previous run's bench/RESULTS.md, not yet committed, is no change to what is measured)
if [[ -n "$(cd "$ROOT" && git status --porcelain -- . ':(exclude)bench/RESULTS.md' 2>/dev/null | head -1)" ]]; then
  COMMIT="$COMMIT (with uncommitted changes)"
fi
WRK_VERSION="$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2 || true)"
python3 - "$R/meta.json" <<PY
import json, platform, sys
loads = [float(x) for x in open("$WORK/load.txt").read().split()] or [0]
cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
mem = "unknown"
for line in open("/proc/meminfo"):
    if line.startswith("MemTotal"):
        mem = "%.1f GB" % (int(line.split()[1]) / 1024 / 1024)
fs = "$(findmnt -n -o FSTYPE --target "$WORK" 2>/dev/null || stat -f -c %T "$WORK")"
json.dump({
    "command": "bench/run.sh" + (" --quick" if "$MODE" == "quick" else ""),
    "mode": "$MODE", "date": "$(date -u '+%Y-%m-%d %H:%M UTC')", "commit": "$COMMIT",
    "cpu": cpu, "nproc": $NPROC, "mem": mem, "kernel": platform.release(), "fs": fs,
    "load_before": "$LOAD_BEFORE (CPU ${BUSY_START}% busy just before the first measurement)",
    "load_heavy": "%.2f" % max(loads),
    "others_during": "%.1f core-seconds (%.1f %% of the machine's %d cores over the run); hypervisor steal %.1f %%" % (
        $OTHER_TICKS / $CLK_TCK, 100.0 * $OTHER_TICKS / max(1, $TOTAL1 - $TOTAL0),
        $NPROC, 100.0 * ($STEAL1 - $STEAL0) / max(1, $TOTAL1 - $TOTAL0)),
    "load_after": "$(cut -d' ' -f1-3 /proc/loadavg)",
    "others": "$OTHERS" or "none above 5 % CPU",
    "cpu_speed": "$CPU_SPEED",
    "io_threads": $IO_THREADS, "conns": $CONNS, "dur": "${DUR} s", "dur_scale": "${DUR_SCALE} s",
    "wrk": "$WRK_VERSION, -t$WRK_THREADS -c$CONNS $(if ((PIN)); then echo "(servers pinned to CPU(s) $SERVER_CPUS, wrk and redis-benchmark to CPU(s) $CLIENT_CPUS)"; else echo "(wrk shares the same $NPROC cores, no pinning)"; fi)",
    "duration": "%d s" % ($T_END - $T_START),
    "scale_counters": [$(IFS=,; echo "${SCALE_COUNTERS[*]}")],
    "report_counters": [$(IFS=,; echo "${REPORT_COUNTERS[*]}")],
    "seed_per_counter": $SEED_PER, "exp_runs": $EXP_RUNS, "micro_reps": $REPS,
    "rb_requests": $RB_N,
}, open(sys.argv[1], "w"))
PY
"${TOOLS[@]}" render "$R" "$OUT"
log "wrote ${OUT#$ROOT/}"
