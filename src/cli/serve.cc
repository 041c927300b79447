// gimel serve: the long-running HTTP server over the configured store.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>

#include "api/api.h"
#include "cli/commands.h"
#include "http/server.h"
#include "service/service.h"

namespace gimel::cli {

int Serve(const CommonFlags& flags) {
  auto config = LoadWithFlags(flags);
  if (!config.ok()) {
    std::cerr << "gimel: " << config.status().message() << "\n";
    return 1;
  }
  spdlog::set_level(spdlog::level::from_str(config->log_level));

  // A generated key is saved before anything listens, so it is never lost.
  if (config->api_key.empty()) {
    auto key = GenerateApiKey();
    if (!key.ok()) {
      std::cerr << "gimel: " << key.status().message() << "\n";
      return 1;
    }
    Status s = SetConfigValue(config->path, "api_key", *key);
    if (!s.ok()) {
      std::cerr << "gimel: cannot save the generated API key: " << s.message() << "\n";
      return 1;
    }
    config->api_key = *key;
    std::cout << "Generated a new API key and saved it to " << config->path << " (mode 0600)\n";
  }

  auto store_options = StoreOptionsFrom(*config);
  if (!store_options.ok()) {
    std::cerr << "gimel: " << store_options.status().message() << "\n";
    return 1;
  }
  auto store = store::Store::Open(*store_options);
  if (!store.ok()) {
    std::cerr << "gimel: cannot open the " << config->store
              << " store: " << store.status().message() << "\n";
    return 1;
  }

  service::ServiceOptions service_options;
  service_options.default_namespace = config->default_namespace;
  service_options.max_name_bytes = config->limits.max_name_bytes;
  service_options.max_experiments_per_namespace = config->limits.max_experiments_per_namespace;
  service::Service service(store->get(), service_options);

  api::ApiOptions api_options;
  api_options.api_key = config->api_key;
  api_options.routes = config->routes;
  api_options.max_body_bytes = config->limits.max_body_bytes;
  api_options.max_batch_events = config->limits.max_batch_events;
  api::Api api(&service, api_options);

  http::ServerOptions server_options;
  if (Status s = SplitHostPort(config->listen, &server_options.host, &server_options.port);
      !s.ok()) {
    std::cerr << "gimel: " << s.message() << "\n";
    return 1;
  }
  server_options.io_threads = config->io_threads;
  server_options.max_url_bytes = config->limits.max_url_bytes;
  server_options.max_header_bytes = config->limits.max_header_bytes;
  server_options.max_body_bytes = config->limits.max_body_bytes;
  server_options.max_connections = config->limits.max_connections;
  server_options.header_timeout = std::chrono::milliseconds(config->header_timeout_ms);
  server_options.idle_timeout = std::chrono::milliseconds(config->idle_timeout_ms);
  server_options.request_timeout = std::chrono::milliseconds(config->request_timeout_ms);

  // Signals are handled by sigwait on this thread; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = http::Server::Start(server_options, [&api](api::Request req, api::Reply reply) {
    api.Handle(std::move(req), std::move(reply));
  });
  if (!server.ok()) {
    std::cerr << "gimel: cannot listen on " << config->listen << ": " << server.status().message()
              << "\n";
    return 1;
  }
  const std::string url = "http://" + (*server)->address();
  if (config->public_url.empty()) config->public_url = url;

  std::cout << "gimel listening on " << url << " (store: " << config->store;
  if (config->store == "embedded") std::cout << ", data: " << config->data_dir;
  std::cout << ")\n"
            << "API key: " << config->api_key << "\n"
            << "Dashboard: " << config->PublicUrl() << "/dashboard\n"
            << "Tracking snippet (paste into your pages):\n\n"
            << Snippet(*config, config->default_namespace) << "\n"
            << "Report: curl -H 'X-Api-Key: <API key>' " << config->PublicUrl() << "/experiments\n"
            << std::flush;

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}, draining in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Stop(std::chrono::milliseconds(5000));
  server->reset();
  store->reset();  // flushes and closes the store after the last request finished
  spdlog::info("stopped cleanly");
  return 0;
}

}  // namespace gimel::cli
