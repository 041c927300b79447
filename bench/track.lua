-- wrk script: realistic GET /track requests (bench/README.md).
--
-- Environment (all optional):
--   BENCH_COUNTERS   number of distinct counters to spread events over (default 100). Counter c
--                    is experiment c//10, variant c%2, event (c//2)%5: 10 counters per
--                    experiment, as an A/B test with 2 variants and 4 goals + participate.
--   BENCH_REPEAT     fraction of requests that reuse a recent uuid (default 0.3)
--   BENCH_NAMESPACE  namespace (default "bench")
--   BENCH_RATE       target total requests/s; 0 (default) = closed loop, as fast as possible.
--                    With a rate, requests are paced to it (see delay() below).
--   BENCH_THREADS    the -t given to wrk (needed only with BENCH_RATE)
--   BENCH_CONNS      the -c given to wrk (only for the fallback pacing without LuaJIT's ffi)
-- Names carry spaces ('+' and %20), '/', ':', '#', quotes and non-ASCII, URL-encoded.
-- done() prints one line "GIMEL_BENCH {json}" with requests, errors and latency percentiles.

local counters = tonumber(os.getenv("BENCH_COUNTERS") or "100")
local repeat_frac = tonumber(os.getenv("BENCH_REPEAT") or "0.3")
local ns = os.getenv("BENCH_NAMESPACE") or "bench"
local rate = tonumber(os.getenv("BENCH_RATE") or "0")
local conns = tonumber(os.getenv("BENCH_CONNS") or "1")

-- UTF-8 spelled out as decimal byte escapes (LuaJIT has no "\u{...}").
local events = {"participate", "clicked \226\128\156kaufen\226\128\157", "signed up \226\156\147",
                "checkout/paid", "bounce:early"}
local variants = {"rot/red", "blau \240\159\148\181"}

local function encode(s, space)
  s = string.gsub(s, "[^A-Za-z0-9%-%._~ ]", function(c)
    return string.format("%%%02X", string.byte(c))
  end)
  return (string.gsub(s, " ", function() return space end))
end

-- Every counter's request prefix is built in init(), before wrk starts its clock: built on
-- first use, 100,000 counters made the load generator itself the bottleneck (nginx answered
-- 37 k instead of 58 k req/s), and the scaling table measured wrk's string building. Now a
-- request costs the same whatever the number of counters.
local prefixes = {}
local function build_prefixes()
  local ns_enc = encode(ns, "+")
  local variant_enc, event_enc = {}, {}
  for i, v in ipairs(variants) do variant_enc[i] = encode(v, "%20") end
  for i, e in ipairs(events) do event_enc[i] = encode(e, "%20") end
  local experiment_enc = {}
  for c = 0, counters - 1 do
    local e = math.floor(c / 10)
    local x = experiment_enc[e]
    if x == nil then
      x = encode(string.format("Kaufen-Knopf Farbe \195\188 #%d", e), "+")
      experiment_enc[e] = x
    end
    prefixes[c] = "/track?namespace=" .. ns_enc .. "&experiment=" .. x ..
                  "&variant=" .. variant_enc[c % 2 + 1] ..
                  "&event=" .. event_enc[math.floor(c / 2) % 5 + 1] .. "&uuid="
  end
end

local random = math.random
local ring, ring_size, ring_n, ring_pos = {}, 10000, 0, 0

local function new_uuid()
  return string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x",
                       random(0, 65535), random(0, 65535), random(0, 65535), random(0, 4095),
                       32768 + random(0, 16383), random(0, 65535), random(0, 65535),
                       random(0, 65535))
end

local thread_id = 0
function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  -- Distinct streams per thread and per run.
  math.randomseed(os.time() * 1000 + (id or 0) * 7919 + math.floor(os.clock() * 1e6))
  for _ = 1, 10 do random() end
  build_prefixes()
end

function request()
  local uuid
  if ring_n > 0 and random() < repeat_frac then
    uuid = ring[random(1, ring_n)]
  else
    uuid = new_uuid()
    ring_pos = ring_pos % ring_size + 1
    ring[ring_pos] = uuid
    if ring_n < ring_size then ring_n = ring_n + 1 end
  end
  local req = wrk.format("GET", prefixes[random(0, counters - 1)] .. uuid)
  return req
end

if rate > 0 then
  -- Open-loop-ish pacing: each wrk thread keeps one schedule of send slots, spaced by a random
  -- interval (uniform 0.5..1.5 x threads/rate); after each response, delay() reserves the next
  -- free slot for that connection and waits until it. The rate is then the target whatever the
  -- latency (as long as the connections suffice), with no catch-up burst after a stall
  -- (coordinated omission is not corrected: wrk times each request from its actual send).
  local threads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local interval = threads * 1000.0 / rate  -- ms between sends of one thread
  local ok, ffi = pcall(require, "ffi")
  local now_ms
  if ok then
    ffi.cdef [[
      typedef struct { long tv_sec; long tv_nsec; } gimel_timespec;
      int clock_gettime(int clk, gimel_timespec* ts);
    ]]
    local ts = ffi.new("gimel_timespec")
    now_ms = function()
      ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
      return tonumber(ts.tv_sec) * 1000.0 + tonumber(ts.tv_nsec) / 1e6
    end
  end
  local next_slot = nil
  function delay()
    local d
    if now_ms then
      local now = now_ms()
      local step = interval * (0.5 + random())
      if next_slot == nil or next_slot < now then next_slot = now end
      next_slot = next_slot + step
      d = next_slot - now
    else
      d = conns * 1000.0 / rate * (0.5 + random())  -- fallback: per-connection think time
    end
    local f = math.floor(d)
    if random() < d - f then f = f + 1 end
    return f
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'GIMEL_BENCH {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"lat_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
