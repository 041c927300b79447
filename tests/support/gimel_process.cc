#include "tests/support/gimel_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace gimel::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Writes to a child that already exited must fail with EPIPE, not kill the test.
[[maybe_unused]] const bool kIgnoreSigpipe = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();

int Connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Appends what arrives on `fd` before `deadline` (one recv). False on timeout, close or error.
bool RecvSome(int fd, Clock::time_point deadline, std::string* buf) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char chunk[16384];
  ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
  if (n <= 0) return false;
  buf->append(chunk, static_cast<size_t>(n));
  return true;
}

// Reads one HTTP response (Content-Length framed) or until close.
HttpResponse ReadResponse(int fd, std::chrono::milliseconds timeout) {
  HttpResponse r;
  std::string buf;
  auto deadline = Clock::now() + timeout;
  size_t header_end = std::string::npos;
  size_t content_length = 0;
  bool have_length = false;
  while (true) {
    if (header_end != std::string::npos && have_length &&
        buf.size() >= header_end + 4 + content_length) {
      break;
    }
    if (!RecvSome(fd, deadline, &buf)) break;
    if (header_end == std::string::npos) {
      header_end = buf.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        std::string head = buf.substr(0, header_end);
        size_t line_end = head.find("\r\n");
        std::string status_line = head.substr(0, line_end);
        if (status_line.size() >= 12) r.status = std::atoi(status_line.c_str() + 9);
        size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
        while (pos < head.size()) {
          size_t e = head.find("\r\n", pos);
          if (e == std::string::npos) e = head.size();
          std::string line = head.substr(pos, e - pos);
          size_t colon = line.find(':');
          if (colon != std::string::npos) {
            std::string name = line.substr(0, colon);
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            std::string value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.erase(0, 1);
            r.headers[name] = value;
          }
          pos = e + 2;
        }
        if (auto it = r.headers.find("content-length"); it != r.headers.end()) {
          content_length = std::stoul(it->second);
          have_length = true;
        }
      }
    }
  }
  if (header_end != std::string::npos) {
    r.body = buf.substr(header_end + 4, have_length ? content_length : std::string::npos);
  } else {
    r.status = 0;
  }
  return r;
}

}  // namespace

nlohmann::json HttpResponse::json() const {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

HttpResponse Http(uint16_t port, const std::string& method, const std::string& target,
                  const std::map<std::string, std::string>& headers, const std::string& body) {
  int fd = Connect(port);
  if (fd < 0) return {};
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST") {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  HttpResponse r;
  if (WriteAll(fd, req)) r = ReadResponse(fd, std::chrono::milliseconds(10000));
  ::close(fd);
  return r;
}

std::string RawExchange(uint16_t port, const std::string& raw, std::chrono::milliseconds timeout) {
  int fd = Connect(port);
  if (fd < 0) return "";
  std::string out;
  if (WriteAll(fd, raw)) {
    const auto deadline = Clock::now() + timeout;
    while (RecvSome(fd, deadline, &out)) {
    }
  }
  ::close(fd);
  return out;
}

std::string GimelBinary() {
  if (const char* env = std::getenv("GIMEL_BIN")) return env;
  return std::string(GIMEL_BINARY_DIR) + "/src/cli/gimel";
}

std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = (fs::temp_directory_path() / (prefix + "XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

namespace {

pid_t Spawn(const std::vector<std::string>& args, int* in_fd, int* out_fd, int* err_fd) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) || ::pipe2(out_pipe, O_CLOEXEC) || ::pipe2(err_pipe, O_CLOEXEC)) {
    throw std::runtime_error("pipe failed");
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) throw std::runtime_error("cannot spawn " + args[0] + ": " + std::strerror(rc));
  if (in_fd) {
    *in_fd = in_pipe[1];
  } else {
    ::close(in_pipe[1]);
  }
  *out_fd = out_pipe[0];
  *err_fd = err_pipe[0];
  return pid;
}

void Drain(int fd, std::string* into) {
  char buf[4096];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return;
    into->append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

GimelProcess::GimelProcess(nlohmann::json config, std::string data_dir)
    : data_dir_(std::move(data_dir)) {
  if (!config.contains("listen")) config["listen"] = "127.0.0.1:0";
  if (!config.contains("api_key")) config["api_key"] = kApiKey;
  if (!config.contains("sync")) config["sync"] = false;  // tests need speed, not power-loss safety
  std::string dir = MakeTempDir("gimel_cfg_");
  config_path_ = dir + "/config.json";
  std::ofstream(config_path_) << config.dump(2);
}

GimelProcess::~GimelProcess() {
  Kill();
  std::error_code ec;
  fs::remove_all(fs::path(config_path_).parent_path(), ec);
}

bool GimelProcess::Start(std::chrono::milliseconds timeout) {
  std::vector<std::string> args = {GimelBinary(), "serve", "--config", config_path_};
  if (!data_dir_.empty()) {
    args.push_back("--data-dir");
    args.push_back(data_dir_);
  }
  output_.clear();
  error_.clear();
  port_ = 0;
  pid_ = Spawn(args, nullptr, &out_fd_, &err_fd_);
  ReadUntilListening(timeout);
  return port_ != 0;
}

void GimelProcess::ReadUntilListening(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  const std::string marker = "gimel listening on http://";
  while (Clock::now() < deadline) {
    pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    ::poll(fds, 2, 100);
    Drain(out_fd_, &output_);
    Drain(err_fd_, &error_);
    size_t at = output_.find(marker);
    if (at != std::string::npos) {
      size_t colon = output_.find(':', at + marker.size());
      size_t end = output_.find_first_not_of("0123456789", colon + 1);
      if (colon != std::string::npos && end != std::string::npos) {
        port_ = static_cast<uint16_t>(std::stoi(output_.substr(colon + 1, end - colon - 1)));
        return;
      }
    }
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      Drain(out_fd_, &output_);
      Drain(err_fd_, &error_);
      pid_ = -1;
      return;
    }
  }
}

int GimelProcess::Stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  Drain(out_fd_, &output_);
  Drain(err_fd_, &error_);
  ::close(out_fd_);
  ::close(err_fd_);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void GimelProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  ::close(out_fd_);
  ::close(err_fd_);
}

int RunGimel(const std::vector<std::string>& args, std::string* out, std::string* err,
             const std::string& stdin_text) {
  std::vector<std::string> full = {GimelBinary()};
  full.insert(full.end(), args.begin(), args.end());
  int in_fd, out_fd, err_fd;
  pid_t pid = Spawn(full, &in_fd, &out_fd, &err_fd);
  size_t off = 0;
  while (off < stdin_text.size()) {
    ssize_t n = ::write(in_fd, stdin_text.data() + off, stdin_text.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ::close(in_fd);
  std::string o, e;
  while (true) {
    pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    int n = ::poll(fds, 2, 30000);
    if (n <= 0) break;
    char buf[4096];
    bool open = false;
    for (auto& f : fds) {
      if (f.revents & (POLLIN | POLLHUP)) {
        ssize_t r = ::read(f.fd, buf, sizeof buf);
        if (r > 0) {
          (f.fd == out_fd ? o : e).append(buf, static_cast<size_t>(r));
          open = true;
        }
      } else {
        open = true;
      }
    }
    if (!open) break;
  }
  ::close(out_fd);
  ::close(err_fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (out) *out = o;
  if (err) *err = e;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace gimel::testing
