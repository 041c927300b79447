// Tests for gimel::http::Server over real sockets on 127.0.0.1 (port 0), plus the wire
// helpers. The client is plain POSIX sockets with a receive timeout, so a broken server fails
// a test instead of hanging it.
#include "http/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/defer.h"
#include "common/loop.h"
#include "http/wire.h"

namespace gimel::http {
namespace {

// GIMEL_TEST_DEBUG=1 shows the server's per-connection debug log.
const bool kDebugLog = [] {
  if (std::getenv("GIMEL_TEST_DEBUG")) spdlog::set_level(spdlog::level::debug);
  return true;
}();

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// A tiny blocking HTTP client
// ---------------------------------------------------------------------------------------------

struct ClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class Client {
 public:
  Client() = default;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() { Close(); }

  // False if the connection is refused.
  bool Connect(uint16_t port, std::chrono::milliseconds recv_timeout = 3000ms) {
    Close();
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    timeval tv{};
    tv.tv_sec = recv_timeout.count() / 1000;
    tv.tv_usec = (recv_timeout.count() % 1000) * 1000;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      Close();
      return false;
    }
    return true;
  }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads one response; nullopt if the connection closed or the read timed out first.
  std::optional<ClientResponse> Read(bool head_request = false) {
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    ClientResponse r;
    std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    std::size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    if (status_line.size() < 12) return std::nullopt;
    r.status = std::stoi(status_line.substr(9, 3));
    std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      std::size_t next = head.find("\r\n", pos);
      if (next == std::string::npos) next = head.size();
      std::string line = head.substr(pos, next - pos);
      std::size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
      pos = next + 2;
    }
    std::size_t length = 0;
    if (!head_request && r.headers.count("content-length")) {
      length = std::stoul(r.headers["content-length"]);
    }
    while (buf_.size() < length) {
      if (!Fill()) return std::nullopt;
    }
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return r;
  }

  std::optional<ClientResponse> Roundtrip(std::string_view request, bool head = false) {
    if (!Send(request)) return std::nullopt;
    return Read(head);
  }

  // True if the server closes (EOF or reset) within `within`; unread data is discarded.
  bool WaitClosed(std::chrono::milliseconds within) {
    auto deadline = Clock::now() + within;
    char tmp[4096];
    while (Clock::now() < deadline) {
      ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
      if (n == 0) return true;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return true;
    }
    return false;
  }

  // True if bytes arrive (or are already buffered) within `within`; reads nothing.
  bool Readable(std::chrono::milliseconds within) {
    if (!buf_.empty()) return true;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(within.count())) > 0;
  }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buf_.clear();
  }

 private:
  bool Fill() {
    char tmp[16384];
    ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buf_;
};

std::string Get(std::string_view target, std::string_view extra_headers = "") {
  std::string r = "GET ";
  r.append(target).append(" HTTP/1.1\r\nHost: test\r\n").append(extra_headers).append("\r\n");
  return r;
}

std::string Post(std::string_view target, std::string_view body) {
  std::string r = "POST ";
  r.append(target)
      .append(" HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: ")
      .append(std::to_string(body.size()))
      .append("\r\n\r\n")
      .append(body);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

// "METHOD PATH?QUERY|BODY", synchronously.
void Echo(api::Request req, api::Reply reply) {
  api::Response r;
  r.headers.push_back({"Content-Type", "text/plain"});
  r.body = req.method + " " + req.path + "?" + req.query + "|" + req.body;
  reply(std::move(r));
}

// Replies from worker threads after a delay chosen per request; joins them on destruction.
class DelayedReplies {
 public:
  ~DelayedReplies() { Join(); }

  void Later(std::chrono::milliseconds delay, api::Reply reply, api::Response response) {
    std::lock_guard lock(mu_);
    threads_.emplace_back([delay, reply = std::move(reply), response = std::move(response)] {
      std::this_thread::sleep_for(delay);
      reply(response);
    });
  }

  void Join() {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

api::Response Text(std::string body) {
  api::Response r;
  r.headers.push_back({"Content-Type", "text/plain"});
  r.body = std::move(body);
  return r;
}

ServerOptions TestOptions() {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.io_threads = 2;
  return o;
}

std::unique_ptr<Server> MustStart(const ServerOptions& options, api::Handler handler) {
  auto server = Server::Start(options, std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(server).value() : nullptr;
}

void ExpectJsonError(const std::optional<ClientResponse>& r, int status) {
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, status);
  EXPECT_EQ(r->header("content-type"), "application/json");
  EXPECT_EQ(r->header("access-control-allow-origin"), "*");
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_NE(r->body.find("{\"message\":\""), std::string::npos) << r->body;
}

// ---------------------------------------------------------------------------------------------
// Basics
// ---------------------------------------------------------------------------------------------

TEST(HttpServer, EchoesMethodPathQueryAndBody) {
  auto server = MustStart(TestOptions(), Echo);
  ASSERT_TRUE(server);
  EXPECT_NE(server->port(), 0);
  EXPECT_EQ(server->address(), "127.0.0.1:" + std::to_string(server->port()));

  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  auto r = c.Roundtrip(Post("/a%20b/c?x=1&y=%2F", "hello"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST /a%20b/c?x=1&y=%2F|hello");
  EXPECT_EQ(r->header("server"), "gimel");
  EXPECT_EQ(r->header("content-type"), "text/plain");
  EXPECT_EQ(r->header("content-length"), std::to_string(r->body.size()));
  EXPECT_EQ(r->header("connection"), "");

  r = c.Roundtrip(Get("/plain"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /plain?|");
}

TEST(HttpServer, PassesHeadersAndChunkedBodies) {
  auto server = MustStart(TestOptions(), [](api::Request req, api::Reply reply) {
    std::string names;
    for (const auto& h : req.headers) names += h.name + "=" + h.value + ";";
    reply(Text(names + "|" + req.body));
  });
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  auto r = c.Roundtrip(
      "POST /c HTTP/1.1\r\nHost: h\r\nX-Api-Key: k1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "Host=h;X-Api-Key=k1;Transfer-Encoding=chunked;|hello world");
}

TEST(HttpServer, HeadSendsHeadersWithoutBody) {
  auto server = MustStart(TestOptions(), Echo);
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  ASSERT_TRUE(c.Send("HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.Read(/*head_request=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-length"), std::to_string(std::string("HEAD /h?|").size()));
  // The next response must follow immediately: no body bytes in between.
  r = c.Roundtrip(Get("/next"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /next?|");
}

TEST(HttpServer, HandlerCannotBreakFraming) {
  auto server = MustStart(TestOptions(), [](api::Request, api::Reply reply) {
    api::Response r = Text("ok");
    r.status = 201;
    r.headers.push_back({"Content-Length", "999"});
    r.headers.push_back({"X-Evil", "a\r\nSet-Cookie: x"});
    r.headers.push_back({"X-Fine", "yes"});
    reply(std::move(r));
  });
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  auto r = c.Roundtrip(Get("/"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->header("content-length"), "2");
  EXPECT_EQ(r->header("x-evil"), "");
  EXPECT_EQ(r->header("set-cookie"), "");
  EXPECT_EQ(r->header("x-fine"), "yes");
}

// ---------------------------------------------------------------------------------------------
// Keep-alive, pipelining, asynchronous handlers, concurrency
// ---------------------------------------------------------------------------------------------

TEST(HttpServer, ReusesOneKeepAliveConnectionForManyRequests) {
  auto server = MustStart(TestOptions(), Echo);
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  for (int i = 0; i < 200; ++i) {
    auto r = c.Roundtrip(Get("/k?i=" + std::to_string(i)));
    ASSERT_TRUE(r) << i;
    ASSERT_EQ(r->body, "GET /k?i=" + std::to_string(i) + "|");
  }
}

TEST(HttpServer, Http10ClosesUnlessKeepAliveRequested) {
  auto server = MustStart(TestOptions(), Echo);
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  auto r = c.Roundtrip("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("connection"), "keep-alive");
  r = c.Roundtrip("GET /b HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /b?|");
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.WaitClosed(2000ms));
}

TEST(HttpServer, Http11ConnectionCloseIsHonoured) {
  auto server = MustStart(TestOptions(), Echo);
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  auto r = c.Roundtrip(Get("/x", "Connection: close\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.WaitClosed(2000ms));
}

TEST(HttpServer, AnswersPipelinedRequestsInOrder) {
  DelayedReplies later;
  auto server = MustStart(TestOptions(), [&](api::Request req, api::Reply reply) {
    int i = std::stoi(req.query);
    // Earlier requests answer later: order must come from the server, not the handler.
    later.Later(std::chrono::milliseconds((10 - i) * 10), std::move(reply), Text(req.query));
  });
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  std::string batch;
  for (int i = 0; i < 10; ++i) batch += Get("/p?" + std::to_string(i));
  ASSERT_TRUE(c.Send(batch));
  for (int i = 0; i < 10; ++i) {
    auto r = c.Read();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body, std::to_string(i));
  }
  later.Join();
}

TEST(HttpServer, PipeliningBeyondTheCapStillAnswersEverything) {
  ServerOptions o = TestOptions();
  o.max_pipelined = 2;
  auto server = MustStart(o, Echo);
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  std::string batch;
  for (int i = 0; i < 50; ++i) batch += Get("/q?" + std::to_string(i));
  ASSERT_TRUE(c.Send(batch));
  for (int i = 0; i < 50; ++i) {
    auto r = c.Read();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body, "GET /q?" + std::to_string(i) + "|");
  }
}

TEST(HttpServer, AsyncHandlerRepliesFromAnotherThreadAfterDelay) {
  DelayedReplies later;
  auto server = MustStart(TestOptions(), [&](api::Request req, api::Reply reply) {
    later.Later(100ms, std::move(reply), Text("late " + req.path));
  });
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  auto start = Clock::now();
  auto r = c.Roundtrip(Get("/slow"));
  ASSERT_TRUE(r);
  EXPECT_GE(Clock::now() - start, 90ms);
  EXPECT_EQ(r->body, "late /slow");
  r = c.Roundtrip(Get("/again"));  // the connection stays usable
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "late /again");
  later.Join();
}

// A store completes a batch of events inside a DeferScope (common/defer.h): the replies of
// every connection, on both I/O threads, are held until the scope closes, then all arrive.
TEST(HttpServer, RepliesDeferredInAScopeArriveWhenItCloses) {
  std::mutex mu;
  std::vector<std::pair<std::string, api::Reply>> replies;
  auto server = MustStart(TestOptions(), [&](api::Request req, api::Reply reply) {
    std::lock_guard lock(mu);
    replies.emplace_back(req.path, std::move(reply));
  });
  ASSERT_TRUE(server);
  constexpr int kClients = 6;  // handed to the 2 I/O threads in turn
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<Client>());
    ASSERT_TRUE(clients.back()->Connect(server->port()));
    ASSERT_TRUE(clients.back()->Send(Get("/c" + std::to_string(i))));
  }
  const auto deadline = Clock::now() + 5s;
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (replies.size() == kClients) break;
    }
    ASSERT_LT(Clock::now(), deadline) << "the handler did not see every request";
    std::this_thread::sleep_for(1ms);
  }
  std::thread store([&] {
    DeferScope scope;
    for (auto& [path, reply] : replies) reply(Text("done " + path));
    // Held: nothing is sent while the scope is open.
    for (auto& c : clients) EXPECT_FALSE(c->Readable(50ms));
  });
  store.join();
  for (int i = 0; i < kClients; ++i) {
    auto r = clients[i]->Read();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body, "done /c" + std::to_string(i));
  }
}

// A reply deferred into a scope that closes after the server is gone is dropped harmlessly.
TEST(HttpServer, DeferredReplyOutlivingTheServerIsDropped) {
  std::promise<api::Reply> got;
  auto server = MustStart(TestOptions(),
                          [&](api::Request, api::Reply reply) { got.set_value(std::move(reply)); });
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  ASSERT_TRUE(c.Send(Get("/x")));
  auto future = got.get_future();
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  api::Reply reply = future.get();
  {
    DeferScope scope;
    reply(Text("too late"));
    server->Stop(0ms);
    server.reset();
  }
  EXPECT_FALSE(c.Read());  // closed by Stop, no response
}

// Each I/O thread runs a Loop (common/loop.h): a handler finds it, can run work on it, and
// what it keeps there is told when the server stops.
TEST(HttpServer, HandlersRunOnALoopWhoseLocalsAreToldWhenItStops) {
  struct Local final : LoopLocal {
    explicit Local(std::atomic<int>* exits) : exits(exits) {}
    void OnLoopExit() override { exits->fetch_add(1); }
    std::atomic<int>* exits;
  };
  const uint64_t key = Loop::NewKey();
  std::atomic<int> locals{0};
  std::atomic<int> exits{0};
  auto server = MustStart(TestOptions(), [&](api::Request req, api::Reply reply) {
    Loop* loop = Loop::Current();
    if (loop == nullptr) return reply(Text("no loop"));
    if (loop->Find(key) == nullptr) {
      loop->Set(key, std::make_shared<Local>(&exits));
      locals.fetch_add(1);
    }
    // Work posted to the loop's context runs on this thread, later.
    boost::asio::post(loop->context(), [loop, reply = std::move(reply), path = req.path] {
      reply(Text(Loop::Current() == loop ? "on the loop " + path : "elsewhere"));
    });
  });
  ASSERT_TRUE(server);
  constexpr int kClients = 4;  // handed to the 2 I/O threads in turn
  for (int i = 0; i < kClients; ++i) {
    Client c;
    ASSERT_TRUE(c.Connect(server->port()));
    auto r = c.Roundtrip(Get("/" + std::to_string(i)));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "on the loop /" + std::to_string(i));
  }
  EXPECT_EQ(locals.load(), 2);
  EXPECT_EQ(exits.load(), 0);
  server->Stop(0ms);
  EXPECT_EQ(exits.load(), 2);
}

TEST(HttpServer, ServesConcurrentClients) {
  auto server = MustStart(TestOptions(), Echo);
  ASSERT_TRUE(server);
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      Client c;
      if (!c.Connect(server->port())) return;
      for (int i = 0; i < 50; ++i) {
        std::string q = std::to_string(t) + "-" + std::to_string(i);
        auto r = c.Roundtrip(Post("/c?" + q, q));
        if (r && r->body == "POST /c?" + q + "|" + q) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 8 * 50);
}

TEST(HttpServer, HandlerThatNeverRepliesGets503AfterRequestTimeout) {
  ServerOptions o = TestOptions();
  o.request_timeout = 200ms;
  std::vector<api::Reply> kept;  // never called (until after the timeout)
  std::mutex mu;
  auto server = MustStart(o, [&](api::Request, api::Reply reply) {
    std::lock_guard lock(mu);
    kept.push_back(std::move(reply));
  });
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  auto r = c.Roundtrip(Get("/never"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(r->body.find("timed out"), std::string::npos);
  // A late reply is dropped; the connection keeps working.
  {
    std::lock_guard lock(mu);
    kept.front()(Text("too late"));
  }
  ASSERT_TRUE(c.Send(Get("/never2")));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
}

TEST(HttpServer, HandlerExceptionBecomes500) {
  auto server =
      MustStart(TestOptions(), [](api::Request, api::Reply) { throw std::runtime_error("boom"); });
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  auto r = c.Roundtrip(Get("/"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
}

// ---------------------------------------------------------------------------------------------
// Limits and malformed input
// ---------------------------------------------------------------------------------------------

TEST(HttpServer, LongTargetGets414) {
  ServerOptions o = TestOptions();
  o.max_url_bytes = 100;
  auto server = MustStart(o, Echo);
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  auto r = c.Roundtrip(Get("/" + std::string(200, 'a')));
  ExpectJsonError(r, 414);
  EXPECT_TRUE(c.WaitClosed(2000ms));

  // A target far beyond every limit (no CRLF in sight) is still a 414.
  Client c2;
  ASSERT_TRUE(c2.Connect(server->port()));
  r = c2.Roundtrip("GET /" + std::string(40000, 'b'));
  ExpectJsonError(r, 414);
}

TEST(HttpServer, LargeHeadersGet431) {
  ServerOptions o = TestOptions();
  o.max_header_bytes = 1000;
  auto server = MustStart(o, Echo);
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  std::string many;
  for (int i = 0; i < 40; ++i)
    many += "X-H" + std::to_string(i) + ": " + std::string(40, 'v') + "\r\n";
  auto r = c.Roundtrip(Get("/", many));
  ExpectJsonError(r, 431);
  EXPECT_TRUE(c.WaitClosed(2000ms));

  Client c2;  // one giant header line
  ASSERT_TRUE(c2.Connect(server->port()));
  r = c2.Roundtrip(Get("/", "X-Big: " + std::string(50000, 'v') + "\r\n"));
  ExpectJsonError(r, 431);
}

TEST(HttpServer, LargeBodyGets413) {
  ServerOptions o = TestOptions();
  o.max_body_bytes = 1000;
  auto server = MustStart(o, Echo);
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  auto r = c.Roundtrip(Post("/", std::string(5000, 'x')));
  ExpectJsonError(r, 413);
  EXPECT_TRUE(c.WaitClosed(2000ms));

  Client c2;  // chunked, over the limit only after decoding several chunks
  ASSERT_TRUE(c2.Connect(server->port()));
  std::string chunked = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 5; ++i) chunked += "12c\r\n" + std::string(300, 'y') + "\r\n";
  chunked += "0\r\n\r\n";
  r = c2.Roundtrip(chunked);
  ExpectJsonError(r, 413);

  Client c3;  // exactly at the limit is fine
  ASSERT_TRUE(c3.Connect(server->port()));
  r = c3.Roundtrip(Post("/", std::string(1000, 'z')));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(HttpServer, MalformedRequestsGet400) {
  auto server = MustStart(TestOptions(), Echo);
  ASSERT_TRUE(server);
  for (std::string bad :
       {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nNo colon here\r\n\r\n", "GET / HTTP/9.9\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"}) {
    Client c;
    ASSERT_TRUE(c.Connect(server->port()));
    auto r = c.Roundtrip(bad);
    ExpectJsonError(r, 400);
    EXPECT_TRUE(c.WaitClosed(2000ms)) << bad;
  }
}

TEST(HttpServer, ErrorAfterGoodPipelinedRequestKeepsOrder) {
  auto server = MustStart(TestOptions(), Echo);
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  ASSERT_TRUE(c.Send(Get("/first") + "BROKEN\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /first?|");
  ExpectJsonError(c.Read(), 400);
}

TEST(HttpServer, ExpectContinueGetsInterimResponse) {
  auto server = MustStart(TestOptions(), Echo);
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  ASSERT_TRUE(
      c.Send("POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 100);
  r = c.Roundtrip("abc");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "POST /e?|abc");
}

// ---------------------------------------------------------------------------------------------
// Timeouts and connection limits
// ---------------------------------------------------------------------------------------------

TEST(HttpServer, HeaderTimeoutClosesSlowClientWhileOthersAreServed) {
  ServerOptions o = TestOptions();
  o.header_timeout = 200ms;
  auto server = MustStart(o, Echo);
  ASSERT_TRUE(server);

  Client slow;
  ASSERT_TRUE(slow.Connect(server->port()));
  ASSERT_TRUE(slow.Send("GET /slow HTTP/1.1\r\nHost: x\r\n"));  // never finishes
  auto start = Clock::now();

  Client fast;
  ASSERT_TRUE(fast.Connect(server->port()));
  for (int i = 0; i < 5; ++i) {
    auto r = fast.Roundtrip(Get("/fast"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(slow.WaitClosed(2000ms));
  EXPECT_GE(Clock::now() - start, 150ms);
  EXPECT_LT(Clock::now() - start, 1500ms);

  // A client that connects and sends nothing is closed too.
  Client silent;
  ASSERT_TRUE(silent.Connect(server->port()));
  start = Clock::now();
  EXPECT_TRUE(silent.WaitClosed(2000ms));
  EXPECT_LT(Clock::now() - start, 1000ms);
}

TEST(HttpServer, IdleTimeoutClosesKeepAliveConnection) {
  ServerOptions o = TestOptions();
  // Margins for a loaded CI machine: the pause stays far under the timeout, and the close is
  // timed from before the last request (the server's idle timer starts after its answer).
  o.idle_timeout = 500ms;
  auto server = MustStart(o, Echo);
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  ASSERT_TRUE(c.Roundtrip(Get("/1")));
  std::this_thread::sleep_for(100ms);  // under the idle timeout: still open
  auto start = Clock::now();
  ASSERT_TRUE(c.Roundtrip(Get("/2")));
  EXPECT_TRUE(c.WaitClosed(3000ms));
  EXPECT_GE(Clock::now() - start, 500ms);
  EXPECT_LT(Clock::now() - start, 2500ms);
}

TEST(HttpServer, SlowHandlerIsNotCutByIdleTimeout) {
  ServerOptions o = TestOptions();
  o.idle_timeout = 100ms;
  DelayedReplies later;
  auto server = MustStart(o, [&](api::Request, api::Reply reply) {
    later.Later(300ms, std::move(reply), Text("slow"));
  });
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  auto r = c.Roundtrip(Get("/"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "slow");
  later.Join();
}

TEST(HttpServer, EnforcesMaxConnections) {
  ServerOptions o = TestOptions();
  o.max_connections = 2;
  auto server = MustStart(o, Echo);
  ASSERT_TRUE(server);
  Client a, b, c;
  ASSERT_TRUE(a.Connect(server->port()));
  ASSERT_TRUE(a.Roundtrip(Get("/a")));
  ASSERT_TRUE(b.Connect(server->port()));
  ASSERT_TRUE(b.Roundtrip(Get("/b")));
  ASSERT_TRUE(c.Connect(server->port()));
  auto r = c.Roundtrip(Get("/c"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("access-control-allow-origin"), "*");
  EXPECT_NE(r->body.find("too many connections"), std::string::npos);
  EXPECT_TRUE(c.WaitClosed(2000ms));

  // Once a slot frees up, new connections are served again.
  a.Close();
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    Client d;
    ASSERT_TRUE(d.Connect(server->port()));
    auto rd = d.Roundtrip(Get("/d"));
    served = rd && rd->status == 200;
    if (!served) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(served);
}

// ---------------------------------------------------------------------------------------------
// Start and Stop
// ---------------------------------------------------------------------------------------------

TEST(HttpServer, StartFailsWhenAddressInUse) {
  auto first = MustStart(TestOptions(), Echo);
  ASSERT_TRUE(first);
  ServerOptions o = TestOptions();
  o.port = first->port();
  auto second = Server::Start(o, Echo);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kIOError);
  EXPECT_NE(second.status().message().find("address already in use"), std::string::npos)
      << second.status().ToString();
}

TEST(HttpServer, StopDrainsInFlightRequestThenRefusesConnections) {
  DelayedReplies later;
  std::atomic<int> handled{0};
  auto server = MustStart(TestOptions(), [&](api::Request, api::Reply reply) {
    later.Later(300ms, std::move(reply), Text("drained"));
    handled.fetch_add(1);
  });
  ASSERT_TRUE(server);
  const uint16_t port = server->port();

  Client idle;  // an idle keep-alive connection is closed promptly
  ASSERT_TRUE(idle.Connect(port));
  ASSERT_TRUE(idle.Send(Get("/warm")));
  ASSERT_TRUE(idle.Read());

  Client busy;
  ASSERT_TRUE(busy.Connect(port));
  ASSERT_TRUE(busy.Send(Get("/slow")));
  for (int i = 0; i < 500 && handled.load() < 2; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(handled.load(), 2);  // the request is in the handler

  std::optional<ClientResponse> response;
  std::thread reader([&] { response = busy.Read(); });
  auto start = Clock::now();
  server->Stop();
  auto took = Clock::now() - start;
  reader.join();

  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "drained");
  EXPECT_EQ(response->header("connection"), "close");
  EXPECT_LT(took, 3000ms);
  EXPECT_TRUE(idle.WaitClosed(1000ms));
  Client refused;
  EXPECT_FALSE(refused.Connect(port));
  server->Stop();  // idempotent
  later.Join();
}

TEST(HttpServer, StopForceClosesAfterDrainDeadline) {
  DelayedReplies later;
  auto server = MustStart(TestOptions(), [&](api::Request, api::Reply reply) {
    later.Later(600ms, std::move(reply), Text("too slow"));
  });
  ASSERT_TRUE(server);
  Client c;
  ASSERT_TRUE(c.Connect(server->port()));
  ASSERT_TRUE(c.Send(Get("/")));
  std::this_thread::sleep_for(50ms);
  auto start = Clock::now();
  server->Stop(100ms);
  EXPECT_LT(Clock::now() - start, 1000ms);
  EXPECT_FALSE(c.Read());
  server.reset();  // the reply arrives after the server is gone: dropped safely
  later.Join();
}

TEST(HttpServer, WaitReturnsAfterStopFromAnotherThread) {
  auto server = MustStart(TestOptions(), Echo);
  ASSERT_TRUE(server);
  std::thread stopper([&] {
    std::this_thread::sleep_for(50ms);
    server->Stop();
  });
  server->Wait();
  stopper.join();
  SUCCEED();
}

// ---------------------------------------------------------------------------------------------
// Wire helpers
// ---------------------------------------------------------------------------------------------

TEST(HttpWire, SplitTarget) {
  std::string path, query;
  wire::SplitTarget("/a/b?x=1&y", path, query);
  EXPECT_EQ(path, "/a/b");
  EXPECT_EQ(query, "x=1&y");
  wire::SplitTarget("/a?", path, query);
  EXPECT_EQ(path, "/a");
  EXPECT_EQ(query, "");
  wire::SplitTarget("http://host:80/p?q=1#frag", path, query);
  EXPECT_EQ(path, "/p");
  EXPECT_EQ(query, "q=1");
  wire::SplitTarget("http://host", path, query);
  EXPECT_EQ(path, "/");
  EXPECT_EQ(query, "");
}

// The Date line AppendResponse writes: "Date: " IMF-fixdate "\r\n" within a second of now.
void ExpectDateLine(const std::string& line) {
  ASSERT_EQ(line.size(), 37u) << line;
  std::tm tm{};
  const char* end = strptime(line.c_str(), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
  ASSERT_NE(end, nullptr) << line;
  EXPECT_EQ(*end, '\0') << line;
  EXPECT_LE(std::abs(timegm(&tm) - std::time(nullptr)), 2) << line;
}

TEST(HttpWire, AppendResponseFraming) {
  api::Response r;
  r.status = 204;
  r.body = "ignored";
  std::string out;
  wire::AppendResponse(out, r, {.version = 11, .head = false, .close = false});
  const std::string head = "HTTP/1.1 204 No Content\r\nServer: gimel\r\n";
  ASSERT_TRUE(out.starts_with(head)) << out;
  ASSERT_TRUE(out.ends_with("\r\n\r\n")) << out;
  ExpectDateLine(out.substr(head.size(), out.size() - head.size() - 2));

  out.clear();
  r.status = 404;
  r.body = "nf";
  r.headers = {{"Server", "other"}, {"Date", "Thu, 01 Jan 1970 00:00:00 GMT"}};
  wire::AppendResponse(out, r, {.version = 10, .head = false, .close = true});
  EXPECT_EQ(out,
            "HTTP/1.0 404 Not Found\r\nServer: other\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
            "Content-Length: 2\r\nConnection: close\r\n\r\nnf");
}

}  // namespace
}  // namespace gimel::http
