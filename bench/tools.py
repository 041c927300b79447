#!/usr/bin/env python3
"""Helpers of bench/run.sh (standard library only).

  tools.py port                                  print a free loopback TCP port
  tools.py seed URL NS FIRST LAST PER_COUNTER    POST /track batches: PER_COUNTER events for each
        [--repeat 0.3] [--batch 1000] [--conns 4]   counter FIRST..LAST-1 (same naming as track.lua)
  tools.py experiments URL NS KEY RUNS           time GET /experiments (1 warm-up + RUNS), JSON out
  tools.py wrkjson FILE                          the GIMEL_BENCH line of a wrk output, as JSON
  tools.py rusage OUT CMD...                     run CMD; write the CPU time it used to OUT (JSON)
  tools.py rbcsv FILE                            a redis-benchmark --csv output, as JSON
  tools.py medianpeak DIR STORE                  the result name of STORE's median peak window
  tools.py render DIR OUT                        write RESULTS.md from the JSON files in DIR
"""
import http.client
import json
import os
import random
import socket
import statistics
import sys
import threading
import time
import urllib.parse

EVENTS = ["participate", "clicked \u201ckaufen\u201d", "signed up \u2713", "checkout/paid",
          "bounce:early"]
VARIANTS = ["rot/red", "blau \U0001F535"]


def counter_names(c):
    """(experiment, variant, event) of counter c: the same scheme as bench/track.lua."""
    return ("Kaufen-Knopf Farbe \u00fc #%d" % (c // 10), VARIANTS[c % 2], EVENTS[(c // 2) % 5])


def cmd_port(_args):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def _conn(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=120)


def cmd_seed(args):
    url, ns, first, last, per = args[0], args[1], int(args[2]), int(args[3]), int(args[4])
    opts = dict(repeat=0.3, batch=1000, conns=4)
    rest = args[5:]
    for i in range(0, len(rest), 2):
        opts[rest[i].lstrip("-")] = float(rest[i + 1])
    n = last - first
    total = n * per
    batch = int(opts["batch"])
    nbatches = (total + batch - 1) // batch
    # JSON prefix of each counter's events, built once.
    prefixes = []
    for c in range(first, last):
        e, v, g = counter_names(c)
        prefixes.append('{"namespace":%s,"experiment":%s,"variant":%s,"event":%s,"uuid":"' % (
            json.dumps(ns), json.dumps(e), json.dumps(v), json.dumps(g)))
    next_batch = [0]
    lock = threading.Lock()
    failures = []
    sent = [0]

    def worker(seed):
        rng = random.Random(seed)
        ring = []
        conn = _conn(url)
        while True:
            with lock:
                b = next_batch[0]
                next_batch[0] += 1
            if b >= nbatches:
                break
            lo, hi = b * batch, min(total, (b + 1) * batch)
            parts = []
            for i in range(lo, hi):
                if ring and rng.random() < opts["repeat"]:
                    u = ring[rng.randrange(len(ring))]
                else:
                    h = "%032x" % rng.getrandbits(128)
                    u = "%s-%s-4%s-%s-%s" % (h[:8], h[8:12], h[13:16], h[16:20], h[20:])
                    if len(ring) < 10000:
                        ring.append(u)
                    else:
                        ring[rng.randrange(10000)] = u
                parts.append(prefixes[i % n] + u + '"}')
            body = ("[" + ",".join(parts) + "]").encode()
            for attempt in range(3):
                try:
                    conn.request("POST", "/track", body, {"Content-Type": "application/json"})
                    r = conn.getresponse()
                    data = r.read()
                    if r.status == 200:
                        break
                    err = "HTTP %d %s" % (r.status, data[:200])
                except (OSError, http.client.HTTPException) as ex:
                    err = repr(ex)
                    conn.close()
                    conn = _conn(url)
                time.sleep(0.2)
            else:
                with lock:
                    failures.append(err)
                continue
            with lock:
                sent[0] += hi - lo

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(i * 1000003 + first,))
               for i in range(int(opts["conns"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.time() - t0
    print(json.dumps({"events": sent[0], "counters": n, "seconds": round(dt, 3),
                      "events_per_s": round(sent[0] / dt) if dt else 0,
                      "failed_batches": len(failures), "first_error": failures[:1]}))
    return 1 if failures else 0


def cmd_experiments(args):
    url, ns, key, runs = args[0], args[1], args[2], int(args[3])
    conn = _conn(url)
    path = "/experiments?namespace=" + urllib.parse.quote(ns)
    times, size, status, nexp = [], 0, 0, 0
    for i in range(runs + 1):
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"X-Api-Key": key})
        r = conn.getresponse()
        body = r.read()
        dt = (time.perf_counter() - t0) * 1000
        status, size = r.status, len(body)
        if i == 0:
            try:
                nexp = len(json.loads(body)) - 1
            except ValueError:
                nexp = -1
            continue
        times.append(dt)
    print(json.dumps({"status": status, "bytes": size, "experiments": nexp, "runs": runs,
                      "min_ms": round(min(times), 2), "median_ms": round(statistics.median(times), 2),
                      "max_ms": round(max(times), 2)}))
    return 0 if status == 200 else 1


def cmd_wrkjson(args):
    for line in open(args[0], encoding="utf-8", errors="replace"):
        if line.startswith("GIMEL_BENCH "):
            d = json.loads(line[len("GIMEL_BENCH "):])
            d["rps"] = round(d["requests"] / (d["duration_us"] / 1e6), 1)
            d["errors_total"] = sum(d["errors"].values())
            print(json.dumps(d))
            return 0
    print(json.dumps({"error": "no GIMEL_BENCH line in " + args[0]}))
    return 1


def cmd_rusage(args):
    """Runs CMD and writes the CPU time it used (all its threads, from wait4) to OUT: how busy
    the load generator itself was. Exits with CMD's status."""
    import subprocess
    out, cmd = args[0], args[1:]
    p = subprocess.Popen(cmd)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    with open(out, "w") as f:
        json.dump({"user_s": ru.ru_utime, "sys_s": ru.ru_stime}, f)
    return p.returncode


def cmd_rbcsv(args):
    import csv
    rows = list(csv.reader(open(args[0])))
    head = [h.strip() for h in rows[0]]
    for r in rows[1:]:
        if len(r) == len(head):
            d = dict(zip(head, r))
            out = {"test": d["test"], "rps": float(d["rps"])}
            for k in ("avg_latency_ms", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms",
                      "max_latency_ms"):
                if k in d:
                    out[k] = float(d[k])
            print(json.dumps(out))
            return 0
    print(json.dumps({"error": "no row"}))
    return 1


# ---- RESULTS.md ---------------------------------------------------------------------------

def result_windows(d, name, tag):
    """[(result name, result)] of the windows NAME, NAME-TAG2, NAME-TAG3... in DIR d (run.sh:
    track_series with tag "p", half_windows with tag "w"); [] if NAME has no result."""
    out = []
    k = 1
    while True:
        wname = name if k == 1 else "%s-%s%d" % (name, tag, k)
        r = _load(d, "wrk-" + wname)
        if not r:
            return out
        out.append((wname, r))
        k += 1


def median_window(wins):
    """(result name, result) of the window with the median req/s (the lower one of an even
    count), or (None, None)."""
    have = sorted((r["rps"], wname, r) for wname, r in wins if "rps" in r)
    if not have:
        return None, None
    _, wname, r = have[(len(have) - 1) // 2]
    return wname, r


def cmd_medianpeak(args):
    wname, _ = median_window(result_windows(args[0], args[1], "p"))
    print(wname or args[1])


def _load(d, name):
    p = os.path.join(d, name + ".json")
    if not os.path.exists(p):
        return None
    try:
        with open(p) as f:
            return json.load(f)
    except ValueError:
        return None


def _micro(d, name):
    """{benchmark name: (ns per op, extra counters)} from a Google Benchmark JSON file."""
    j = _load(d, name)
    out = {}
    if not j:
        return out
    benches = j.get("benchmarks", [])
    # With --benchmark_repetitions, keep the median of the repetitions.
    medians = [b for b in benches if b.get("aggregate_name") == "median"]
    for b in medians or benches:
        scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
        out[b.get("run_name", b["name"])] = (b["cpu_time"] * scale, b)
    return out


def _fmt_ns(ns):
    if ns is None:
        return "n/a"
    if ns >= 1e6:
        return "%.2f ms" % (ns / 1e6)
    if ns >= 1e3:
        return "%.2f µs" % (ns / 1e3)
    return "%.1f ns" % ns


def _ms(us):
    return "%.2f" % (us / 1000.0)


def cmd_render(args):
    d, out = args[0], args[1]
    meta = _load(d, "meta") or {}
    L = []
    w = L.append
    w("# gimel benchmark results")
    w("")
    w("Generated by `%s` — do not edit by hand; re-run to refresh. Method and profile: "
      "[README.md](README.md)." % meta.get("command", "bench/run.sh"))
    w("")
    w("## Machine and run")
    w("")
    for k, label in [("date", "date (UTC)"), ("mode", "mode"), ("commit", "commit"),
                     ("cpu", "CPU"), ("nproc", "nproc"), ("mem", "memory"),
                     ("kernel", "kernel"), ("fs", "data dir filesystem"),
                     ("load_before", "load average before"), ("load_heavy", "load average during the run (max seen)"),
                     ("load_after", "load average after"), ("others", "other busy processes at start"),
                     ("others_during", "CPU used by other processes during the run"),
                     ("cpu_speed", "one fixed CPU loop on each CPU, ms (CPU 0 / CPU 1 / ...; "
                      "lower is faster)"),
                     ("io_threads", "gimel io_threads = nginx workers"),
                     ("wrk", "wrk"), ("duration", "wall time of the run")]:
        if k in meta:
            w("- **%s**: %s" % (label, meta[k]))
    w("")

    def wrk(name):
        return _load(d, "wrk-" + name)

    def mean_rps(*runs):
        """The first run with the mean req/s of those that have one (None if none has)."""
        have = [r for r in runs if r and "rps" in r]
        if not have:
            return None
        m = dict(have[0])
        m["rps"] = sum(r["rps"] for r in have) / len(have)
        m["runs"] = len(have)
        return m

    def ratio(a, b):
        if a and b and "rps" in a and "rps" in b and b["rps"] > 0:
            return a["rps"] / b["rps"]
        return None

    def peak_ratios(wins, first, base_of):
        """[ratio] of each peak window (run.sh: track_series) to the mean of its baseline runs
        just before it (FIRST for the first window) and just after it (BASE_OF("after-" +
        window))."""
        out, before = [], first
        for wname, r in wins:
            after = base_of("after-" + wname)
            out.append(ratio(r, mean_rps(before, after)))
            before = after
        return out

    def half_windows(name):
        """[(result name, result)] of the half-load windows of NAME (run.sh: half_windows)."""
        return result_windows(d, name, "w")

    nginx_start, nginx_end = wrk("nginx"), wrk("nginx-end")
    rb_before = _load(d, "redis-benchmark")
    emb_wins, red_wins = result_windows(d, "embedded", "p"), result_windows(d, "redis", "p")
    emb, red = median_window(emb_wins)[1], median_window(red_wins)[1]
    emb_ratios = peak_ratios(emb_wins, nginx_start, lambda n: wrk("nginx-" + n))
    red_ratios = peak_ratios(red_wins, rb_before, lambda n: _load(d, "redis-benchmark-" + n))
    nginx_nosync = mean_rps(wrk("nginx-before-embedded-nosync"), wrk("nginx-after-embedded-nosync"))
    hll = _micro(d, "micro-hll")
    url = _micro(d, "micro-url")
    api = _micro(d, "micro-api")

    def row_wrk(label, r, note=""):
        if not r or "rps" not in r:
            w("| %s | n/a | | | | | | %s |" % (label, note))
            return
        errs = r.get("errors_total", 0)
        client = "n/a"
        if "client_cpu_us_per_req" in r:
            client = "%s (%.0f %%)" % (r["client_cpu_us_per_req"], 100 * r["client_busy"])
        w("| %s | %s | %s | %s | %s | %s | %s | %s%s |" % (
            label, "{:,.0f}".format(r["rps"]), _ms(r["lat_us"]["p50"]), _ms(r["lat_us"]["p99"]),
            "{:,}".format(r["requests"]), r.get("server_cpu_us_per_req", "n/a"), client, note,
            ("; %d errors" % errs) if errs else ""))

    w("## Track throughput (GET /track, keep-alive, %s connections, %s)" % (
        meta.get("conns", "?"), meta.get("dur", "?")))
    w("")
    w("| target | req/s | p50 ms | p99 ms | requests | server CPU µs/req ¹ | wrk CPU µs/req "
      "(busy) ² | notes |")
    w("|---|---:|---:|---:|---:|---:|---:|---|")

    def of(k, n):
        return ", peak window %d of %d" % (k, n) if n > 1 else ""

    row_wrk("nginx `return 204` (HTTP ceiling), start of run, just before embedded", nginx_start)
    for k, (wname, r) in enumerate(emb_wins, 1):
        row_wrk("gimel, embedded store (`\"sync\": true`, the default)" + of(k, len(emb_wins)), r)
        row_wrk("nginx `return 204`, just after embedded" + of(k, len(emb_wins)),
                wrk("nginx-after-" + wname),
                "each embedded window's ratio uses the mean of the nginx runs just before and after it")
    row_wrk("nginx `return 204`, just before embedded `sync: false`",
            wrk("nginx-before-embedded-nosync"))
    row_wrk("gimel, embedded store, `\"sync\": false` (reference)", wrk("embedded-nosync"),
            "WAL written but not fsynced")
    row_wrk("nginx `return 204`, just after embedded `sync: false`",
            wrk("nginx-after-embedded-nosync"))

    def row_rb(label, r, note=""):
        if r and "rps" in r:
            w("| %s | %s | %s | %s | %s | %s | n/a | %s |" % (
                label, "{:,.0f}".format(r["rps"]), r.get("p50_latency_ms", "n/a"),
                r.get("p99_latency_ms", "n/a"), "{:,}".format(meta.get("rb_requests", 0)),
                r.get("server_cpu_us_per_req", "n/a"), note))

    row_rb("redis-benchmark PFADD -P 1 (naive client ceiling), just before gimel redis", rb_before,
           "same concurrency; CPU of redis-server")
    for k, (wname, r) in enumerate(red_wins, 1):
        row_wrk("gimel, redis store" + of(k, len(red_wins)), r)
        row_rb("redis-benchmark PFADD -P 1, just after gimel redis" + of(k, len(red_wins)),
               _load(d, "redis-benchmark-after-" + wname),
               "each redis window's ratio uses the mean of the redis-benchmark runs just before "
               "and after it")
    if nginx_end:
        row_wrk("nginx `return 204`, end of run (drift check)", nginx_end)
    for label, name, peak in [("gimel embedded at half of its peak", "embedded-half", emb),
                              ("gimel embedded sync:false at half of its peak",
                               "embedded-nosync-half", wrk("embedded-nosync")),
                              ("gimel redis at half of its peak", "redis-half", red)]:
        windows = half_windows(name)
        for k, (wname, r) in enumerate(windows, 1):
            if not (r and peak and "rps" in r and "rps" in peak):
                continue
            row_wrk(label + (", window %d of %d" % (k, len(windows)) if len(windows) > 1 else ""), r,
                    "rate-limited: %.0f%% of peak achieved" % (100.0 * r["rps"] / peak["rps"]))
            floor = wrk("nginx-at-" + wname)
            if floor:
                row_wrk("nginx `return 204` paced to the same rate, right after", floor,
                        "this machine's floor for the tail at that load")
            disk = _load(d, "disk-at-" + wname)
            if disk and "p99_ms" in disk:
                w("| disk alone: group commits (write + `fdatasync`) of the same events per second, "
                  "right after | %s ev/s | %.2f | %.2f | %s | n/a | n/a | the disk's floor under a "
                  "durable store's tail: %s syncs, longest %.2f ms, %d over 5 ms |" % (
                      "{:,.0f}".format(disk["rate"]), disk["p50_ms"], disk["p99_ms"],
                      "{:,}".format(disk["events"]), "{:,}".format(disk["syncs"]),
                      disk["sync_max_ms"], disk["syncs_over_5ms"]))
    w("")
    w("¹ CPU time (user + system, from /proc) of the server processes during the run divided by "
      "the requests: nginx master + workers; gimel; for the redis rows gimel **plus** "
      "redis-server; for redis-benchmark, redis-server alone. wrk's own CPU is not counted "
      "there; where it runs: see the wrk line above (%s)." % meta.get("wrk", "?"))
    w("")
    w("² wrk's own CPU time (user + system, all its threads, its start-up included) divided by "
      "its requests, and in brackets that time over the run's duration: the share of one CPU "
      "it kept busy. Near 100 % (per wrk thread), the load generator, not the server, limits "
      "the row's req/s, and at a fixed rate a burst of answers waits for wrk to take it in.")
    w("")

    # ---- targets
    res = []

    def target(name, measured, goal, ok):
        res.append((name, measured, goal, "n/a" if ok is None else ("**pass**" if ok else "**FAIL**")))

    def ratio_target(name, ratios, goal):
        """The target judged on the median of the windows' ratios; every window's is shown."""
        have = [x for x in ratios if x is not None]
        m = statistics.median(have) if have else None
        measured = "%.2f×" % m if m is not None else "n/a"
        if len(have) > 1:
            measured += " (median of %d windows: %s)" % (len(have), " / ".join("%.2f" % x for x in have))
        target(name, measured, "≥ %.2f×" % goal, None if m is None else m >= goal)

    ratio_target("embedded track throughput / nginx (runs just before and after each window)",
                 emb_ratios, 0.7)
    r1b = ratio(wrk("embedded-nosync"), nginx_nosync)
    if r1b is not None:
        target("(reference) embedded `sync: false` throughput / nginx", "%.2f×" % r1b, "≥ 0.70×",
               r1b >= 0.7)
    ratio_target("redis track throughput / redis-benchmark PFADD -P 1 (runs just before and after "
                 "each window)", red_ratios, 1.0)
    # The p99 of each window at half of peak; the target is judged on their median (one
    # window's p99 depends on the phase of the shared host it falls in; all are shown).
    for label, name in [("embedded", "embedded-half"), ("redis", "redis-half"),
                        ("(reference) embedded `sync: false`", "embedded-nosync-half")]:
        p99s = [r["lat_us"]["p99"] / 1000.0 for _, r in half_windows(name) if r and "lat_us" in r]
        if not p99s and label.startswith("(reference)"):
            continue
        p = statistics.median(p99s) if p99s else None
        if len(p99s) > 1:
            measured = "%.2f ms (median of %d windows: %s)" % (
                p, len(p99s), " / ".join("%.2f" % x for x in p99s))
        else:
            measured = "%.2f ms" % p if p is not None else "n/a"
        floors = [x["p99_ms"] for x in (_load(d, "disk-at-" + n) for n, _ in half_windows(name))
                  if x and "p99_ms" in x]
        if floors:
            measured += "; the disk alone at that rate: %s ms" % " / ".join("%.2f" % x for x in floors)
        target("p99 at half of peak load (%s)" % label, measured, "≤ 5 ms", None if p is None else p <= 5.0)
    add = hll.get("BM_AddDense", (None,))[0]
    target("HLL add (dense, incl. hash)", _fmt_ns(add), "≤ 50 ns", None if add is None else add <= 50)
    cnt = hll.get("BM_CountDense/100000", (None,))[0]
    target("HLL count (dense, stale cache)", _fmt_ns(cnt), "≤ 20 µs", None if cnt is None else cnt <= 20000)
    for label, name, goal in [("embedded", "exp-embedded-10000", 100), ("redis", "exp-redis-10000", 300)]:
        e = _load(d, name)
        m = e["median_ms"] if e and "median_ms" in e else None
        target("/experiments over 10,000 counters (%s), median" % label,
               "%.1f ms (max %.1f)" % (m, e["max_ms"]) if m is not None else "n/a",
               "≤ %d ms" % goal, None if m is None else m <= goal)
    rss = _load(d, "rss")
    disk = _load(d, "disk")
    if rss and "vmhwm_kb" in rss:
        dense = (disk or {}).get("dense", 0) or 0
        limit_mb = 64 + 12 * dense / 1024.0
        mb = rss["vmhwm_kb"] / 1024.0
        target("peak RSS (VmHWM) after %s events over %s counters (embedded)" % (
            "{:,}".format(rss["events"]), "{:,}".format(rss["counters"])),
            "%.1f MB (%d dense counters)" % (mb, dense), "≤ %.1f MB (64 MB + 12 KB × dense)" % limit_mb,
            mb <= limit_mb)
    else:
        target("peak RSS", "n/a", "≤ 64 MB + 12 KB × dense", None)
    if disk and disk.get("hll_bytes"):
        rr = disk["du_after"] / disk["hll_bytes"]
        target("embedded disk after compaction / HLL bytes", "%.2f× (%s B / %s B)" % (
            rr, "{:,}".format(disk["du_after"]), "{:,}".format(disk["hll_bytes"])), "≤ 2.00×", rr <= 2.0)
    else:
        target("embedded disk / HLL bytes", "n/a", "≤ 2×", None)

    w("## Targets (issue #6)")
    w("")
    w("| target | measured | goal | result |")
    w("|---|---|---|---|")
    for r in res:
        w("| %s | %s | %s | %s |" % r)
    w("")

    # ---- scaling
    w("## How cost grows with the number of counters")
    w("")
    w("Track throughput (wrk, same connections, %s per point; fresh namespace per point, so "
      "every counter and experiment is new at the start; nginx gets the same requests right "
      "after the embedded point, as the ceiling of this client and machine at that many "
      "counters; µs/req is the server CPU per request, as in the first table):"
      % meta.get("dur_scale", "?"))
    w("")
    w("| counters | nginx req/s | embedded req/s | embedded / nginx | embedded µs/req | "
      "embedded p99 ms | redis req/s | redis µs/req | redis p99 ms |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    fallback = {"nginx": nginx_start, "embedded": emb, "redis": red}
    for c in meta.get("scale_counters", []):
        pts = {st: wrk("%s-c%d" % (st, c)) or (fallback[st] if c == 100 else None)
               for st in ("nginx", "embedded", "redis")}
        pts = {st: (r if r and "rps" in r else None) for st, r in pts.items()}
        def rps(st):
            return "{:,.0f}".format(pts[st]["rps"]) if pts[st] else "n/a"
        def cpu(st):
            v = pts[st].get("server_cpu_us_per_req") if pts[st] else None
            return "%.1f" % v if v is not None else "n/a"
        def p99(st):
            return _ms(pts[st]["lat_us"]["p99"]) if pts[st] else "n/a"
        ratio = ("%.2f×" % (pts["embedded"]["rps"] / pts["nginx"]["rps"])
                 if pts["embedded"] and pts["nginx"] and pts["nginx"]["rps"] else "n/a")
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            "{:,}".format(c), rps("nginx"), rps("embedded"), ratio, cpu("embedded"),
            p99("embedded"), rps("redis"), cpu("redis"), p99("redis")))
    w("")
    w("`GET /experiments` latency (%s events per counter, 10 counters per experiment; median "
      "of %s requests after one warm-up, keep-alive):" % (meta.get("seed_per_counter", "?"),
                                                          meta.get("exp_runs", "?")))
    w("")
    w("| counters | experiments | JSON bytes | embedded median ms | embedded max ms | redis median ms | redis max ms |")
    w("|---:|---:|---:|---:|---:|---:|---:|")
    for c in meta.get("report_counters", []):
        e, r = _load(d, "exp-embedded-%d" % c), _load(d, "exp-redis-%d" % c)
        base = e or r or {}
        def g(x, k):
            return ("%.1f" % x[k]) if x and k in x else "n/a"
        w("| %s | %s | %s | %s | %s | %s | %s |" % (
            "{:,}".format(c), base.get("experiments", "n/a"), "{:,}".format(base.get("bytes", 0)),
            g(e, "median_ms"), g(e, "max_ms"), g(r, "median_ms"), g(r, "max_ms")))
    w("")

    # ---- memory and disk
    w("## Memory and disk (embedded)")
    w("")
    if rss:
        w("- seeding: %s events over %s counters by `POST /track` batches of 1000 (%s events/s)" % (
            "{:,}".format(rss["events"]), "{:,}".format(rss["counters"]),
            "{:,}".format(rss.get("events_per_s", 0))))
        w("- VmHWM after seeding: %.1f MB; VmRSS: %.1f MB; VmHWM after one /experiments: %.1f MB" % (
            rss["vmhwm_kb"] / 1024.0, rss["vmrss_kb"] / 1024.0, rss.get("vmhwm_after_report_kb", 0) / 1024.0))
    red_rss = _load(d, "rss-redis")
    if red_rss:
        w("- gimel on the redis store, VmHWM at the end of its runs: %.1f MB" % (red_rss["vmhwm_kb"] / 1024.0))
    if disk:
        w("- data dir after a clean stop: %s B; after full compaction: %s B (SST files %s B); "
          "%s counters, %s dense; HLL bytes %s B" % tuple("{:,}".format(disk.get(k, 0)) for k in (
              "du_before", "du_after", "sst_bytes_after", "counters", "dense", "hll_bytes")))
    w("")

    # ---- micro
    w("## Micro-benchmarks (Google Benchmark, CPU time per operation, median of %s repetitions)"
      % meta.get("micro_reps", 1))
    w("")
    w("| benchmark | time | notes |")
    w("|---|---:|---|")
    for table in (hll, url, api):
        for name, (ns, b) in table.items():
            extra = []
            for k in ("per_add", "bytes", "dense", "json_bytes"):
                if k in b:
                    v = b[k]
                    extra.append("%s=%s" % (k, _fmt_ns(v * 1e9) if k == "per_add" else "{:,.0f}".format(v)))
            w("| %s | %s | %s |" % (name, _fmt_ns(ns), ", ".join(extra)))
    w("")

    cmds = os.path.join(d, "commands.txt")
    if os.path.exists(cmds):
        w("## Exact commands")
        w("")
        w("```sh")
        for line in open(cmds):
            w(line.rstrip("\n"))
        w("```")
        w("")
    with open(out, "w") as f:
        f.write("\n".join(L))
    return 0


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    fn = globals().get("cmd_" + sys.argv[1])
    if not fn:
        print(__doc__)
        return 2
    return fn(sys.argv[2:]) or 0


if __name__ == "__main__":
    sys.exit(main())
