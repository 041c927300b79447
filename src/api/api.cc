#include "api/api.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "common/url.h"

namespace gimel::api {
namespace {

using json = nlohmann::json;

constexpr std::string_view kAllowMethods = "GET, POST, DELETE, OPTIONS";
constexpr std::string_view kAllowHeaders = "Content-Type, X-Api-Key, Authorization";

void CommonHeaders(Response* r) { r->headers.push_back({"Access-Control-Allow-Origin", "*"}); }

void NoCache(Response* r) {
  r->headers.push_back({"Cache-Control", "no-cache, no-store, must-revalidate"});
  r->headers.push_back({"Pragma", "no-cache"});
}

// The headers of every JSON answer (shared, see Response::shared_headers; never destroyed, so
// a response built during exit still points at live headers).
const std::vector<Header>* JsonHeaders(bool no_cache) {
  auto make = [](bool no_cache) {
    auto* r = new Response;
    r->headers.push_back({"Content-Type", "application/json"});
    CommonHeaders(r);
    if (no_cache) NoCache(r);
    return &r->headers;
  };
  static const std::vector<Header>* const kCached = make(false);
  static const std::vector<Header>* const kNoCache = make(true);
  return no_cache ? kNoCache : kCached;
}

// A response whose body is JSON text already written.
Response JsonTextResponse(int status, std::string body, bool no_cache) {
  Response r;
  r.status = status;
  r.shared_headers = JsonHeaders(no_cache);
  r.body = std::move(body);
  return r;
}

Response JsonResponse(int status, const json& body, bool no_cache) {
  return JsonTextResponse(status, body.dump(), no_cache);
}

Response TrackOk() {
  Response r;
  r.shared_headers = JsonHeaders(/*no_cache=*/true);
  r.body = "null";
  return r;
}

// The parameter named in "missing parameter 'uuid'", for the machine-readable error field.
std::string ParameterOf(const std::string& message) {
  size_t a = message.find('\'');
  if (a == std::string::npos) return "";
  size_t b = message.find('\'', a + 1);
  if (b == std::string::npos) return "";
  return message.substr(a + 1, b - a - 1);
}

Response BadRequest(const Status& s) {
  json body = {{"message", s.message()}};
  std::string param = ParameterOf(s.message());
  if (!param.empty()) body["parameter"] = param;
  return JsonResponse(400, body, true);
}

// Reads the event fields from decoded query parameters or a JSON object.
// Fills *e from the query's parameters (assigning, so that a reused Event keeps its strings'
// capacity); absent ones are empty.
void EventFromParams(const QueryParams& q, service::Event* e) {
  auto get = [&q](std::string_view key, std::string* out) {
    for (auto& [k, v] : q) {
      if (k == key) {
        out->assign(v);
        return;
      }
    }
    out->clear();
  };
  get("namespace", &e->ns);
  get("experiment", &e->experiment);
  get("variant", &e->variant);
  get("event", &e->event);
  get("uuid", &e->uuid);
}

Status EventFromJson(const json& j, service::Event* e) {
  if (!j.is_object()) return Status::InvalidArgument("each event must be a JSON object");
  struct Field {
    const char* name;
    std::string* out;
  } fields[] = {{"namespace", &e->ns},
                {"experiment", &e->experiment},
                {"variant", &e->variant},
                {"event", &e->event},
                {"uuid", &e->uuid}};
  for (const auto& f : fields) {
    auto it = j.find(f.name);
    if (it == j.end() || it->is_null()) continue;
    if (it->is_string()) {
      *f.out = it->get<std::string>();
    } else if (it->is_number_integer() || it->is_number_unsigned()) {
      *f.out = it->dump();  // numeric uuids are common; keep their decimal text
    } else {
      return Status::InvalidArgument(std::string("parameter '") + f.name + "' must be a string");
    }
  }
  return Status::Ok();
}

// Parses "scope=a,b" into names; empty items are dropped.
std::vector<std::string> SplitScope(const std::string& raw) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= raw.size()) {
    size_t comma = raw.find(',', start);
    if (comma == std::string::npos) comma = raw.size();
    if (comma > start) out.push_back(raw.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// Reads stats=true, baseline=, confidence= into *stats. Returns false if stats not requested.
Result<bool> ParseStatsRequest(const QueryParams& q, service::StatsRequest* stats) {
  const std::string* flag = FindParam(q, "stats");
  if (!flag || *flag == "false" || *flag == "0") return false;
  if (*flag != "true" && *flag != "1" && !flag->empty()) {
    return Status::InvalidArgument("parameter 'stats' must be true or false");
  }
  if (const std::string* b = FindParam(q, "baseline")) stats->baseline = *b;
  if (const std::string* c = FindParam(q, "confidence")) {
    char* end = nullptr;
    double v = std::strtod(c->c_str(), &end);
    if (c->empty() || *end != '\0' || !(v > 0 && v < 1)) {
      return Status::InvalidArgument("parameter 'confidence' must be a number between 0 and 1");
    }
    stats->confidence = v;
  }
  return true;
}

// The query of the endpoints about one experiment: namespace (optional) and experiment.
struct ExperimentQuery {
  QueryParams params;
  std::string ns;
  std::string experiment;
};

Result<ExperimentQuery> ParseExperimentQuery(std::string_view raw) {
  ExperimentQuery q;
  GIMEL_ASSIGN_OR_RETURN(q.params, ParseQuery(raw));
  const std::string* experiment = FindParam(q.params, "experiment");
  if (!experiment || experiment->empty()) {
    return Status::InvalidArgument("missing parameter 'experiment'");
  }
  q.experiment = *experiment;
  if (const std::string* ns = FindParam(q.params, "namespace")) q.ns = *ns;
  return q;
}

}  // namespace

bool SecretEquals(std::string_view a, std::string_view b) {
  // Compare every byte of the longer input; the result depends on all of them.
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

Response ErrorResponse(int status, std::string_view message) {
  return JsonResponse(status, json{{"message", message}}, true);
}

Response StatusResponse(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return JsonResponse(200, nullptr, true);
    case StatusCode::kInvalidArgument:
      return BadRequest(s);
    case StatusCode::kNotFound:
      return ErrorResponse(404, s.message());
    case StatusCode::kPermissionDenied:
      return ErrorResponse(403, "Forbidden");
    case StatusCode::kResourceExhausted:
      return ErrorResponse(422, s.message());
    case StatusCode::kUnavailable:
      return ErrorResponse(503, "store unavailable: " + s.message());
    case StatusCode::kCorruption:
      spdlog::error("corrupt data: {}", s.message());
      return ErrorResponse(500, "stored data is corrupt: " + s.message());
    default:
      spdlog::error("internal error: {}", s.ToString());
      return ErrorResponse(500, s.message());
  }
}

Api::Api(service::Service* service, ApiOptions options)
    : service_(service), options_(std::move(options)) {
  static const std::map<std::string, Route, std::less<>> kNames = {
      {"track", Route::kTrack},           {"experiments", Route::kExperiments},
      {"experiment", Route::kExperiment}, {"delete", Route::kDelete},
      {"healthz", Route::kHealthz},       {"metrics", Route::kMetrics},
      {"dashboard", Route::kDashboard}};
  for (const auto& [path, name] : options_.routes) {
    if (auto it = kNames.find(name); it != kNames.end()) extra_routes_[path] = it->second;
  }
}

Api::Route Api::Lookup(std::string_view path) const {
  if (path == "/track") return Route::kTrack;
  if (path == "/experiments") return Route::kExperiments;
  if (path == "/experiment") return Route::kExperiment;
  if (path == "/delete") return Route::kDelete;
  if (path == "/healthz") return Route::kHealthz;
  if (path == "/metrics") return Route::kMetrics;
  if (path == "/dashboard" || path == "/dashboard/" || path.starts_with("/dashboard/")) {
    return Route::kDashboard;
  }
  if (auto it = extra_routes_.find(path); it != extra_routes_.end()) return it->second;
  return Route::kNone;
}

bool Api::Authorized(const Request& req) const {
  std::string_view key = req.header("X-Api-Key");
  if (key.empty()) {
    std::string_view auth = req.header("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (auth.starts_with(kBearer)) key = auth.substr(kBearer.size());
  }
  return !options_.api_key.empty() && SecretEquals(key, options_.api_key);
}

void Api::Handle(Request req, Reply reply) {
  metrics_.requests.fetch_add(1, std::memory_order_relaxed);
  const Route route = Lookup(req.path);
  if (route == Route::kNone) {
    reply(ErrorResponse(404, "no such path"));
    return;
  }
  if (req.method == "OPTIONS") {
    Response r;
    r.status = 200;
    CommonHeaders(&r);
    r.headers.push_back({"Access-Control-Allow-Methods", std::string(kAllowMethods)});
    r.headers.push_back({"Access-Control-Allow-Headers", std::string(kAllowHeaders)});
    r.headers.push_back({"Access-Control-Max-Age", "86400"});
    r.headers.push_back({"Content-Type", "application/json"});
    r.body = "{}";
    reply(std::move(r));
    return;
  }
  const bool get = req.method == "GET" || req.method == "HEAD";
  auto method_not_allowed = [&reply](std::string allow) {
    Response r = ErrorResponse(405, "method not allowed");
    r.headers.push_back({"Allow", std::move(allow)});
    reply(std::move(r));
  };
  switch (route) {
    case Route::kTrack:
      if (get) return Track(req, std::move(reply));
      if (req.method == "POST") return TrackBatch(req, std::move(reply));
      return method_not_allowed("GET, POST, OPTIONS");
    case Route::kHealthz:
      if (!get) return method_not_allowed("GET, OPTIONS");
      return reply(Healthz());
    case Route::kMetrics:
      if (!get) return method_not_allowed("GET, OPTIONS");
      return reply(MetricsText());
    case Route::kDashboard:
      if (!get) return method_not_allowed("GET, OPTIONS");
      return reply(Dashboard(req));
    default:
      break;
  }
  // Report routes need the API key.
  if (route == Route::kDelete ? req.method != "DELETE" : !get) {
    return method_not_allowed(route == Route::kDelete ? "DELETE, OPTIONS" : "GET, OPTIONS");
  }
  if (!Authorized(req)) {
    metrics_.forbidden.fetch_add(1, std::memory_order_relaxed);
    return reply(ErrorResponse(403, "Forbidden"));
  }
  switch (route) {
    case Route::kExperiments:
      return reply(Experiments(req));
    case Route::kExperiment:
      return reply(Experiment(req));
    case Route::kDelete:
      return reply(Delete(req));
    default:
      return reply(ErrorResponse(404, "no such path"));
  }
}

void Api::Track(const Request& req, Reply reply) {
  // Per-thread scratch: after the first requests, decoding allocates nothing. The store copies
  // what it keeps before Track returns.
  thread_local QueryParams params;
  thread_local service::Event event;
  if (Status s = ParseQueryInto(req.query, &params); !s.ok()) {
    metrics_.bad_requests.fetch_add(1, std::memory_order_relaxed);
    return reply(BadRequest(s));
  }
  EventFromParams(params, &event);
  if (Status s = service_->CheckEvent(event); !s.ok()) {
    metrics_.bad_requests.fetch_add(1, std::memory_order_relaxed);
    return reply(StatusResponse(s));
  }
  service_->Track(event, [this, reply = std::move(reply)](Status s) {
    if (s.ok()) {
      metrics_.events_tracked.fetch_add(1, std::memory_order_relaxed);
      reply(TrackOk());
    } else {
      metrics_.events_failed.fetch_add(1, std::memory_order_relaxed);
      reply(StatusResponse(s));
    }
  });
}

void Api::TrackBatch(const Request& req, Reply reply) {
  if (req.body.size() > options_.max_body_bytes) {
    return reply(ErrorResponse(413, "body is larger than limits.max_body_bytes"));
  }
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    return reply(ErrorResponse(400, "body is not valid JSON"));
  }
  const json* list = &body;
  if (body.is_object() && body.contains("events")) list = &body["events"];
  std::vector<service::Event> events;
  if (list->is_array()) {
    if (list->size() > options_.max_batch_events) {
      return reply(ErrorResponse(413, "more than " + std::to_string(options_.max_batch_events) +
                                          " events in one request (limits.max_batch_events)"));
    }
    events.resize(list->size());
    for (size_t i = 0; i < list->size(); ++i) {
      Status s = EventFromJson((*list)[i], &events[i]);
      if (s.ok()) s = service_->CheckEvent(events[i]);
      if (!s.ok()) {
        Response r = StatusResponse(s);
        if (r.status == 400) {
          json b = json::parse(r.body);
          b["index"] = i;
          r.body = b.dump();
        }
        return reply(std::move(r));
      }
    }
  } else {
    events.resize(1);
    Status s = EventFromJson(*list, &events[0]);
    if (s.ok()) s = service_->CheckEvent(events[0]);
    if (!s.ok()) return reply(StatusResponse(s));
  }
  if (events.empty()) return reply(TrackOk());

  // Answer once every event is stored (200), or with the first failure.
  struct Pending {
    std::atomic<size_t> left;
    std::mutex mu;
    Status first_error;
    Reply reply;
  };
  auto pending = std::make_shared<Pending>();
  pending->left = events.size();
  pending->reply = std::move(reply);
  for (const auto& e : events) {
    service_->Track(e, [this, pending](Status s) {
      if (s.ok()) {
        metrics_.events_tracked.fetch_add(1, std::memory_order_relaxed);
      } else {
        metrics_.events_failed.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard lock(pending->mu);
        if (pending->first_error.ok()) pending->first_error = s;
      }
      if (pending->left.fetch_sub(1) == 1) {
        Status err;
        {
          std::lock_guard lock(pending->mu);
          err = pending->first_error;
        }
        pending->reply(err.ok() ? TrackOk() : StatusResponse(err));
      }
    });
  }
}

Response Api::Experiments(const Request& req) {
  auto params = ParseQuery(req.query);
  if (!params.ok()) return BadRequest(params.status());
  const std::string* ns_param = FindParam(*params, "namespace");
  const std::string ns = ns_param ? *ns_param : "";
  service::StatsRequest stats;
  auto want_stats = ParseStatsRequest(*params, &stats);
  if (!want_stats.ok()) return BadRequest(want_stats.status());
  const std::string* raw_scope = FindParam(*params, "scope");
  if (raw_scope && raw_scope->empty()) raw_scope = nullptr;
  std::vector<std::string> scope;
  if (raw_scope) scope = SplitScope(*raw_scope);
  auto reports = service_->Experiments(ns, raw_scope ? &scope : nullptr);
  if (!reports.ok()) return StatusResponse(reports.status());
  return JsonTextResponse(
      200, service::ExperimentsJson(*reports, raw_scope, *want_stats ? &stats : nullptr), true);
}

Response Api::Experiment(const Request& req) {
  auto q = ParseExperimentQuery(req.query);
  if (!q.ok()) return BadRequest(q.status());
  service::StatsRequest stats;
  auto want_stats = ParseStatsRequest(q->params, &stats);
  if (!want_stats.ok()) return BadRequest(want_stats.status());
  auto report = service_->Experiment(q->ns, q->experiment);
  if (!report.ok()) return StatusResponse(report.status());
  // The original experiment() returns the list of goals.
  return JsonTextResponse(200, service::GoalsJson(*report, *want_stats ? &stats : nullptr), true);
}

Response Api::Delete(const Request& req) {
  auto q = ParseExperimentQuery(req.query);
  if (!q.ok()) return BadRequest(q.status());
  bool existed = false;
  Status s = service_->Delete(q->ns, q->experiment, &existed);
  if (!s.ok()) return StatusResponse(s);
  return JsonResponse(200, json{{"experiment", q->experiment}, {"deleted", existed}}, true);
}

Response Api::Healthz() {
  Status s = service_->store()->Health();
  json body = {{"status", s.ok() ? "ok" : "unavailable"},
               {"store", {{"kind", service_->store()->name()}, {"ok", s.ok()}}}};
  if (!s.ok()) body["store"]["error"] = s.message();
  return JsonResponse(s.ok() ? 200 : 503, body, true);
}

Response Api::MetricsText() {
  Response r;
  r.headers.push_back({"Content-Type", "text/plain; version=0.0.4"});
  CommonHeaders(&r);
  NoCache(&r);
  auto line = [&r](const char* name, const char* help, uint64_t v) {
    r.body += "# HELP ";
    r.body += name;
    r.body += ' ';
    r.body += help;
    r.body += "\n# TYPE ";
    r.body += name;
    r.body += " counter\n";
    r.body += name;
    r.body += ' ';
    r.body += std::to_string(v);
    r.body += '\n';
  };
  line("gimel_requests_total", "HTTP requests answered by the API.", metrics_.requests.load());
  line("gimel_events_tracked_total", "Events stored and acknowledged.",
       metrics_.events_tracked.load());
  line("gimel_events_failed_total", "Events the store failed to record.",
       metrics_.events_failed.load());
  line("gimel_bad_requests_total", "Tracking requests refused as invalid.",
       metrics_.bad_requests.load());
  line("gimel_forbidden_total", "Requests refused for a missing or wrong API key.",
       metrics_.forbidden.load());
  const bool up = service_->store()->Health().ok();
  r.body += "# HELP gimel_store_up Whether the store answers.\n# TYPE gimel_store_up gauge\n";
  r.body += up ? "gimel_store_up 1\n" : "gimel_store_up 0\n";
  return r;
}

}  // namespace gimel::api
