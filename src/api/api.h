// The HTTP API as a plain function from Request to Response (DESIGN.md §1): a route table
// (method + path → handler); each handler parses and validates (400), calls one service
// function, and serialises. One function maps Status to HTTP. No transport, no key names.
//
// Thread-safety: Handle may be called concurrently from any thread.
#pragma once

#include <atomic>
#include <map>
#include <string>

#include "api/request.h"
#include "service/service.h"

namespace gimel::api {

struct ApiOptions {
  std::string api_key;                        // REQUIRES: non-empty
  std::map<std::string, std::string> routes;  // extra path -> handler name ("track", ...)
  size_t max_body_bytes = 1 << 20;            // Default: 1 MiB
  size_t max_batch_events = 1000;             // Default: 1000 events per POST /track
};

class Api {
 public:
  // `service` must outlive the Api.
  Api(service::Service* service, ApiOptions options);

  // Answers one request; `reply` is called exactly once, possibly on a store thread.
  void Handle(Request request, Reply reply);

  // Counters exposed by /metrics.
  struct Metrics {
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> events_tracked{0};
    std::atomic<uint64_t> events_failed{0};
    std::atomic<uint64_t> bad_requests{0};
    std::atomic<uint64_t> forbidden{0};
  };
  const Metrics& metrics() const { return metrics_; }

 private:
  enum class Route {
    kTrack,
    kExperiments,
    kExperiment,
    kDelete,
    kHealthz,
    kMetrics,
    kDashboard,
    kNone
  };
  Route Lookup(std::string_view path) const;

  void Track(const Request& req, Reply reply);
  void TrackBatch(const Request& req, Reply reply);
  Response Experiments(const Request& req);
  Response Experiment(const Request& req);
  Response Delete(const Request& req);
  Response Healthz();
  Response MetricsText();
  Response Dashboard(const Request& req);
  bool Authorized(const Request& req) const;

  service::Service* service_;
  ApiOptions options_;
  std::map<std::string, Route, std::less<>> extra_routes_;
  Metrics metrics_;
};

// Constant-time comparison of two secrets (time depends only on their lengths).
bool SecretEquals(std::string_view a, std::string_view b);

// The JSON error body {"message": ...} with the API's common headers.
Response ErrorResponse(int status, std::string_view message);

// Maps a non-OK Status to a response: InvalidArgument 400, NotFound 404, PermissionDenied 403,
// ResourceExhausted 429... Unavailable 503, Corruption/other 500.
Response StatusResponse(const Status& status);

}  // namespace gimel::api
