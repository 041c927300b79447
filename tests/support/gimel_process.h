// Test helpers: run the real `gimel serve` binary and talk HTTP/1.1 to it.
//
// GimelProcess starts `gimel serve` on 127.0.0.1:0 with a config file of its own, waits for its
// "gimel listening on http://HOST:PORT" line, and stops it (SIGTERM, or SIGKILL) in Stop() or
// its destructor, always reaping the child.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace gimel::testing {

struct HttpResponse {
  int status = 0;                              // 0: no response (connection closed / failed)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  nlohmann::json json() const;
};

// One request on a fresh connection. `target` is sent verbatim ("/track?x=1").
HttpResponse Http(uint16_t port, const std::string& method, const std::string& target,
                  const std::map<std::string, std::string>& headers = {},
                  const std::string& body = "");
// Writes `raw` bytes, then reads until the server closes or `timeout`; returns what was read.
std::string RawExchange(uint16_t port, const std::string& raw,
                        std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));

class GimelProcess {
 public:
  // `config` is written to a temp file and passed with --config; "listen" defaults to
  // 127.0.0.1:0 and "api_key" to kApiKey. `data_dir` is passed with --data-dir when non-empty.
  explicit GimelProcess(nlohmann::json config, std::string data_dir = "");
  ~GimelProcess();
  GimelProcess(const GimelProcess&) = delete;
  GimelProcess& operator=(const GimelProcess&) = delete;

  // Starts and waits until listening. Returns false (with stderr in error()) if it exited.
  bool Start(std::chrono::milliseconds timeout = std::chrono::milliseconds(20000));
  // SIGTERM (graceful) and wait; returns the exit status (or -1).
  int Stop();
  // SIGKILL and wait.
  void Kill();

  uint16_t port() const { return port_; }
  const std::string& output() const { return output_; }
  const std::string& error() const { return error_; }
  const std::string& config_path() const { return config_path_; }

  static constexpr const char* kApiKey = "integration-test-key-0123456789abcdef";

 private:
  void ReadUntilListening(std::chrono::milliseconds timeout);
  std::string config_path_;
  std::string data_dir_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  uint16_t port_ = 0;
  std::string output_;
  std::string error_;
};

// Runs the gimel binary with `args` to completion; returns the exit code and fills outputs.
int RunGimel(const std::vector<std::string>& args, std::string* out, std::string* err,
             const std::string& stdin_text = "");

// Path of the built gimel binary.
std::string GimelBinary();
// A fresh empty temp directory (removed by the caller or at exit of the test).
std::string MakeTempDir(const std::string& prefix);

}  // namespace gimel::testing
