// The Beast server: an acceptor, N I/O threads, and one Session per connection.
//
// Design (after boostorg/beast example/advanced/server):
//
//   * Each I/O thread runs its own io_context (as nginx's workers each run their own event
//     loop); accepted connections are handed to them in turn. A Session's handlers therefore
//     all run on one thread, without a strand's locking and queueing. A Session reads requests with
//     a wire::RequestParser (straight into api::Request), keeps up to max_pipelined requests in a
//     ring of Slots, and writes answers strictly in request order. Consecutive finished
//     answers go out in one write from a per-connection std::string that keeps its capacity.
//   * The handler is asynchronous: its api::Reply may run on any thread. The Reply holds a
//     weak_ptr to the Session and a ReplyGate; it posts the response onto the Session's
//     io_context. A store that completes a batch of events inside a DeferScope
//     (common/defer.h) gets one post per I/O thread for the whole batch (ThreadInbox).
//     The gate (a shared_mutex + flag) is closed after the I/O threads are joined and before
//     the io_context is destroyed, so a Reply outliving the Server is a harmless no-op.
//   * Timeouts: one steady_timer per session covers every deadline: idle (nothing in flight),
//     header (header_timeout from the first byte of a request, or from the accept for the first
//     request), body and write (request_timeout), the oldest request's handler deadline, and the
//     lingering close. The timer is only re-armed when a deadline earlier than its expiry
//     appears; on firing it re-derives what is due from the session state. The read loop is
//     explicit (async_read_some + basic_parser::put) rather than http::async_read with
//     beast::tcp_stream timeouts: in Boost 1.74 tcp_stream's internal timers use a type-erased
//     executor and cost several allocations per request, and this way a session never needs
//     more than one read, one write and one timer wait outstanding.
//   * Closing: after a final response the Session shuts down its send side and drains input
//     briefly ("lingering close") so the client reads the response instead of a reset.
//   * Stop(): close the acceptor, ask each Session to Shutdown (idle ones close at once, busy
//     ones answer in-flight requests with "Connection: close"), wait up to `drain`, force-close
//     the rest, join the threads, close the gate.

#include "http/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/defer.h"
#include "common/loop.h"
#include "http/wire.h"

namespace gimel::http {
namespace internal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using error_code = beast::error_code;
// Concrete executor types: in Boost 1.74 copies of an any_io_executor may allocate, and Beast
// copies executors on every operation.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Stream = beast::basic_stream<tcp, Executor>;
using Timer = asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, Executor>;

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

constexpr std::string_view kContinueResponse = "HTTP/1.1 100 Continue\r\n\r\n";
// Lingering close: how long, and how many bytes, to drain after the final response. Enough
// that a client still uploading a body we refused (413, say a few MiB) finishes its write and
// reads the answer instead of a reset; the time bound caps the work either way.
constexpr auto kLingerTime = std::chrono::milliseconds(500);
constexpr std::size_t kLingerMaxBytes = 8 << 20;
constexpr std::size_t kLingerReadBytes = 64 * 1024;
// Upper bound for one read into the input buffer.
constexpr std::size_t kMaxReadBytes = 64 * 1024;
// The output buffer keeps its capacity across responses unless it grew beyond this.
constexpr std::size_t kMaxRetainedOutput = 64 * 1024;
// Pause before accepting again after accept() failed (e.g. out of file descriptors).
constexpr auto kAcceptBackoff = std::chrono::milliseconds(50);
// After the drain deadline: how long to wait for force-closed sessions to go away.
constexpr auto kForceCloseWait = std::chrono::seconds(1);

std::string Lowercase1(std::string s) {
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

const std::string& BusyResponse() {
  static const std::string bytes = [] {
    std::string out;
    wire::AppendResponse(out, wire::JsonError(503, wire::kErrTooManyConnections),
                         wire::ResponseFraming{.version = 11, .head = false, .close = true});
    return out;
  }();
  return bytes;
}

// Lets api::Reply objects outlive the Server (see the top of this file).
struct ReplyGate {
  std::shared_mutex mu;
  bool open = true;  // GUARDED_BY(mu)
};

class Session;

// Replies deferred for one I/O thread (common/defer.h), handed over as one posted handler.
class ThreadInbox final : public DeferTarget {
 public:
  ThreadInbox(std::shared_ptr<ReplyGate> gate, Executor executor)
      : gate_(std::move(gate)), executor_(std::move(executor)) {}

  void Deliver(std::vector<DeferredTask> tasks) override {
    const std::size_t n = tasks.size();
    try {
      std::shared_lock lock(gate_->mu);
      if (!gate_->open) return;
      asio::post(executor_, [tasks = std::move(tasks)] {
        for (const DeferredTask& task : tasks) task();
      });
    } catch (const std::exception& e) {
      spdlog::error("http: dropping {} replies: {}", n, e.what());
    }
  }

 private:
  const std::shared_ptr<ReplyGate> gate_;
  const Executor executor_;
};

// ---------------------------------------------------------------------------------------------
// Core: acceptor, threads, session registry, stop. Server::Impl is this.
// ---------------------------------------------------------------------------------------------

class Core {
 public:
  Core(const ServerOptions& options, api::Handler handler);
  ~Core();

  Status Listen();
  Status Run();
  void Stop(std::chrono::milliseconds drain);
  void Wait();

  // Called by Session (any thread).
  void Unregister(uint64_t id);

  const ServerOptions options;
  const wire::Limits limits;
  const api::Handler handler;
  const std::shared_ptr<ReplyGate> gate = std::make_shared<ReplyGate>();
  uint16_t port = 0;
  std::string address;

 private:
  void DoAccept();
  void OnAccept(const error_code& ec, Socket socket, std::shared_ptr<ThreadInbox> inbox);
  std::vector<std::shared_ptr<Session>> LiveSessions();
  // Waits until no session is registered or `deadline`; true if none is left.
  bool WaitForSessions(Clock::time_point deadline);

  // One per I/O thread; the acceptor (and its backoff timer) run on the first.
  std::vector<std::unique_ptr<asio::io_context>> iocs_;
  std::vector<std::shared_ptr<ThreadInbox>> inboxes_;  // inboxes_[i] posts to iocs_[i]
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::unique_ptr<asio::steady_timer> backoff_;
  std::vector<asio::executor_work_guard<Executor>> work_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  uint64_t next_id_ = 1;      // acceptor thread only
  std::size_t next_ioc_ = 0;  // acceptor thread only: where the next connection goes

  std::mutex mu_;
  std::condition_variable sessions_cv_;
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions_;  // GUARDED_BY(mu_)
  std::atomic<std::size_t> live_{0};                               // sessions_.size()

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_started_ = false;  // GUARDED_BY(stop_mu_)
  bool stopped_ = false;       // GUARDED_BY(stop_mu_)
};

// ---------------------------------------------------------------------------------------------
// Session: one connection. Every member function runs on its io_context's thread, except the
// constructor, Start() and the Reply closure made by MakeReply().
//
// Reading is an explicit loop (Pump): parse what is buffered, dispatch complete requests,
// read more only when the parser needs it and the pipeline has room. Request state:
//
//   kNone   between requests: no byte of the next request seen. With nothing in flight the
//           connection is idle (idle_timeout; for the first request header_timeout from accept).
//   kHeader bytes seen, header incomplete: closed at read_deadline_ (header_timeout).
//   kBody   header done, body incomplete: closed at read_deadline_ (request_timeout).
//
// All deadlines (idle, header, body, write, handler, linger) share one timer; see OnTimer.
// ---------------------------------------------------------------------------------------------

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Core* core, Socket socket, uint64_t id, std::shared_ptr<ThreadInbox> inbox)
      : core_(core),
        id_(id),
        socket_(std::move(socket)),
        executor_(socket_.get_executor()),
        inbox_(std::move(inbox)),
        timer_(executor_),
        ring_(std::max<std::size_t>(1, core->options.max_pipelined)),
        accepted_at_(Clock::now()) {}

  ~Session() { core_->Unregister(id_); }

  const Executor& executor() const { return executor_; }

  void Start() {
    asio::dispatch(executor_, [self = shared_from_this()] { self->Pump(); });
  }

  // Stop reading new requests; answer in-flight ones with "Connection: close", then close.
  void Shutdown() {
    if (closed_ || closing_) return;
    closing_ = true;
    if (lingering_ || (count_ == 0 && !writing_ && state_ == ReqState::kNone)) {
      Close("server stopping");
    }
  }

  void ForceClose() { Close("drain deadline"); }

 private:
  enum class ReqState { kNone, kHeader, kBody };

  struct Slot {
    uint64_t seq = 0;
    bool done = false;         // response is set
    bool head = false;         // HEAD request: omit the body
    bool keep_alive = true;    // the request allows another one after it
    bool close_after = false;  // error answer: close after writing
    int version = 11;
    Clock::time_point deadline;  // the handler must have replied by then
    api::Response response;
  };

  Slot& SlotAt(std::size_t i) { return ring_[(head_ + i) % ring_.size()]; }

  // True if no further request will be read on this connection.
  bool NoMoreRequests() const { return read_stopped_ || (closing_ && state_ == ReqState::kNone); }

  bool IsIdle() const {
    return reading_ && state_ == ReqState::kNone && count_ == 0 && !writing_ && !lingering_;
  }

  // ------------------------------------------------------------------------------------------
  // Reading
  // ------------------------------------------------------------------------------------------

  void Pump() {
    if (closed_ || read_stopped_ || lingering_) return;
    for (;;) {
      if (count_ >= ring_.size()) return;  // pipeline full: OnWrite resumes
      if (closing_ && state_ == ReqState::kNone) {
        read_stopped_ = true;
        CloseIfFinished();
        return;
      }
      if (buffer_.size() == 0) break;
      if (state_ == ReqState::kNone) BeginRequest();
      error_code ec;
      const std::size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == bhttp::error::need_more) break;
      if (ec) {
        OnParseError(ec);
        return;
      }
      if (state_ == ReqState::kHeader && parser_->is_header_done()) OnHeaderDone();
      if (parser_->is_done()) {
        Dispatch();
        if (closed_ || read_stopped_) return;
      }
    }
    if (!reading_) ReadSome();
  }

  void BeginRequest() {
    const auto now = Clock::now();
    parser_.emplace(core_->limits);
    parser_->eager(false);  // stop after the header so it can be checked first
    state_ = ReqState::kHeader;
    read_deadline_ = (first_request_ ? accepted_at_ : now) + core_->options.header_timeout;
    first_request_ = false;
    WakeAt(read_deadline_);
  }

  void OnHeaderDone() {
    state_ = ReqState::kBody;
    request_deadline_ = Clock::now() + core_->options.request_timeout;
    read_deadline_ = request_deadline_;
    parser_->eager(true);
    if (!parser_->is_done() && parser_->expect_continue() && count_ == 0 && !writing_) {
      WriteContinue();
    }
  }

  // A speculative recv, which usually fails with EAGAIN while the client waits for our answer.
  // Waiting for readiness instead (async_wait) costs more: in Boost 1.74 every such wait
  // re-arms the descriptor with epoll_ctl.
  void ReadSome() {
    reading_ = true;
    socket_.async_read_some(
        buffer_.prepare(beast::read_size(buffer_, kMaxReadBytes)),
        [self = shared_from_this()](const error_code& ec, std::size_t n) { self->OnRead(ec, n); });
    if (IsIdle()) EnterIdle();
  }

  void OnRead(const error_code& ec, std::size_t n) {
    reading_ = false;
    if (closed_) return;
    if (lingering_) {
      OnLingerRead(ec, n);
      return;
    }
    if (ec) {
      if (ec == asio::error::eof && state_ == ReqState::kNone) {  // clean close between requests
        read_stopped_ = true;
        CloseIfFinished();
        return;
      }
      Close(ec == asio::error::eof ? "eof inside a request" : "read failed");
      return;
    }
    buffer_.commit(n);
    Pump();
  }

  void OnParseError(const error_code& ec) {
    const int status = parser_->RejectStatusFor(ec);
    if (status == 0) {
      Close("parse error");
      return;
    }
    std::string_view message = wire::kErrBadRequest;
    switch (status) {
      case 413:
        message = wire::kErrBodyTooLarge;
        break;
      case 414:
        message = wire::kErrUrlTooLong;
        break;
      case 431:
        message = wire::kErrHeaderTooLarge;
        break;
      default:
        break;
    }
    spdlog::debug("http: connection {} rejected a request with {}", id_, status);
    read_stopped_ = true;
    Slot& slot = PushSlot();
    slot.done = true;
    slot.close_after = true;
    slot.version = parser_->version() == 10 ? 10 : 11;
    slot.response = wire::JsonError(status, message);
    parser_.reset();
    state_ = ReqState::kNone;
    MaybeWrite();
  }

  Slot& PushSlot() {
    Slot& slot = ring_[(head_ + count_) % ring_.size()];
    slot.seq = next_seq_++;
    slot.done = false;
    slot.head = false;
    slot.keep_alive = true;
    slot.close_after = false;
    slot.version = 11;
    slot.deadline = request_deadline_;
    ++count_;
    return slot;
  }

  // A complete request is in parser_: queue a slot and call the handler.
  void Dispatch() {
    wire::RequestParser& parser = *parser_;
    const bool keep_alive = parser.keep_alive();
    Slot& slot = PushSlot();
    slot.keep_alive = keep_alive;
    slot.version = parser.version() == 10 ? 10 : 11;
    slot.head = parser.request().method == "HEAD";
    const uint64_t seq = slot.seq;
    if (!keep_alive) read_stopped_ = true;
    if (count_ == 1) WakeAt(slot.deadline);

    api::Request request = std::move(parser.request());
    parser_.reset();
    state_ = ReqState::kNone;
    try {
      core_->handler(std::move(request), MakeReply(seq));
    } catch (const std::exception& e) {
      spdlog::error("http: handler threw: {}", e.what());
      OnReply(seq, wire::JsonError(500, wire::kErrInternal));
    } catch (...) {
      spdlog::error("http: handler threw a non-exception");
      OnReply(seq, wire::JsonError(500, wire::kErrInternal));
    }
  }

  // The handler's completion: posts the response onto this session's io_context (any thread).
  // The reply holds the session weakly, also while deferred (common/defer.h): a deferred reply
  // can outlive the Server, and must not keep a Session (whose destructor uses the Core) alive
  // past it.
  api::Reply MakeReply(uint64_t seq) {
    return [gate = core_->gate, weak = weak_from_this(), ex = executor_, inbox = inbox_,
            seq](api::Response response) {
      try {
        std::shared_lock lock(gate->mu);
        if (!gate->open) return;
        DeferredTask task = [weak, seq, response = std::move(response)]() mutable {
          if (std::shared_ptr<Session> self = weak.lock()) self->OnReply(seq, std::move(response));
        };
        if (!Defer(inbox, task)) asio::post(ex, std::move(task));
      } catch (const std::exception& e) {
        spdlog::error("http: dropping a reply: {}", e.what());
      }
    };
  }

  // The response for request `seq`. Duplicates and late replies are ignored.
  void OnReply(uint64_t seq, api::Response response) {
    if (closed_ || count_ == 0) return;
    const uint64_t first = SlotAt(0).seq;
    if (seq < first || seq - first >= count_) return;
    Slot& slot = SlotAt(static_cast<std::size_t>(seq - first));
    if (slot.done) return;
    slot.response = std::move(response);
    slot.done = true;
    if (seq == first) MaybeWrite();
  }

  // ------------------------------------------------------------------------------------------
  // Writing
  // ------------------------------------------------------------------------------------------

  void WriteContinue() {
    writing_ = true;
    write_deadline_ = Clock::now() + core_->options.request_timeout;
    WakeAt(write_deadline_);
    asio::async_write(socket_, asio::buffer(kContinueResponse.data(), kContinueResponse.size()),
                      [self = shared_from_this()](const error_code& ec, std::size_t) {
                        self->writing_ = false;
                        if (self->closed_) return;
                        if (ec) {
                          self->Close("write failed");
                          return;
                        }
                        self->MaybeWrite();
                      });
  }

  void MaybeWrite() {
    if (closed_ || writing_ || count_ == 0 || !SlotAt(0).done) return;
    out_.clear();
    std::size_t n = 0;
    bool close = false;
    while (n < count_ && SlotAt(n).done) {
      Slot& slot = SlotAt(n);
      const bool last = n + 1 == count_;
      close = slot.close_after || !slot.keep_alive || wire::WantsClose(slot.response) ||
              (last && NoMoreRequests());
      wire::AppendResponse(
          out_, slot.response,
          wire::ResponseFraming{.version = slot.version, .head = slot.head, .close = close});
      ++n;
      if (close) break;
    }
    if (close) read_stopped_ = true;
    writing_ = true;
    write_slots_ = n;
    write_close_ = close;
    write_deadline_ = Clock::now() + core_->options.request_timeout;
    WakeAt(write_deadline_);
    asio::async_write(
        socket_, asio::buffer(out_),
        [self = shared_from_this()](const error_code& ec, std::size_t) { self->OnWrite(ec); });
  }

  void OnWrite(const error_code& ec) {
    writing_ = false;
    if (closed_) return;
    if (ec) {
      Close("write failed");
      return;
    }
    for (std::size_t i = 0; i < write_slots_; ++i) {
      SlotAt(0).response = api::Response{};
      head_ = (head_ + 1) % ring_.size();
      --count_;
    }
    if (out_.capacity() > kMaxRetainedOutput) std::string().swap(out_);
    if (write_close_ || (count_ == 0 && NoMoreRequests())) {
      LingeringClose();
      return;
    }
    if (count_ > 0 && !SlotAt(0).done) WakeAt(SlotAt(0).deadline);
    if (IsIdle()) EnterIdle();
    if (!reading_) Pump();  // resumes parsing/reading if it was paused at the pipeline cap
    MaybeWrite();
  }

  // ------------------------------------------------------------------------------------------
  // Timer
  // ------------------------------------------------------------------------------------------

  void EnterIdle() {
    // The first request's wait counts against header_timeout from the accept.
    const auto now = Clock::now();
    idle_deadline_ = first_request_ ? accepted_at_ + core_->options.header_timeout
                                    : now + core_->options.idle_timeout;
    WakeAt(IdleWake(now));
  }

  // While idle the timer also wakes after header_timeout, so that a request starting later
  // (whose header deadline is then later than the timer's) never has to cancel and re-arm it.
  Clock::time_point IdleWake(Clock::time_point now) const {
    return std::min(idle_deadline_, now + core_->options.header_timeout);
  }

  // Makes sure the timer fires no later than `t`. On firing, OnTimer re-derives what is due
  // from the session state, so an early or stale wake-up is harmless.
  void WakeAt(Clock::time_point t) {
    if (closed_) return;
    if (timer_waiting_) {
      if (timer_.expiry() > t) timer_.expires_at(t);  // the pending wait ends; OnTimer re-arms
      return;
    }
    timer_.expires_at(t);
    timer_waiting_ = true;
    timer_.async_wait([self = shared_from_this()](const error_code&) { self->OnTimer(); });
  }

  void OnTimer() {
    timer_waiting_ = false;
    if (closed_) return;
    const auto now = Clock::now();
    if (lingering_ && linger_deadline_ <= now) {
      Close("finished");
      return;
    }
    if (state_ != ReqState::kNone && read_deadline_ <= now) {
      Close(state_ == ReqState::kHeader ? "header timeout" : "body timeout");
      return;
    }
    if (writing_ && write_deadline_ <= now) {
      Close("write timeout");
      return;
    }
    if (count_ > 0 && !SlotAt(0).done && SlotAt(0).deadline <= now) {
      spdlog::debug("http: connection {}: handler timed out", id_);
      OnReply(SlotAt(0).seq, wire::JsonError(503, wire::kErrTimeout));
      if (closed_) return;
    }
    if (IsIdle() && idle_deadline_ <= now) {
      Close("idle timeout");
      return;
    }
    auto next = Clock::time_point::max();
    if (lingering_) next = std::min(next, linger_deadline_);
    if (state_ != ReqState::kNone) next = std::min(next, read_deadline_);
    if (writing_) next = std::min(next, write_deadline_);
    if (count_ > 0 && !SlotAt(0).done) next = std::min(next, SlotAt(0).deadline);
    if (IsIdle()) next = std::min(next, IdleWake(now));
    if (next != Clock::time_point::max()) WakeAt(next);
  }

  // ------------------------------------------------------------------------------------------
  // Closing
  // ------------------------------------------------------------------------------------------

  void CloseIfFinished() {
    if (count_ == 0 && !writing_ && NoMoreRequests()) Close("finished");
  }

  // After the final response: half-close, then drain input briefly so that unread request
  // bytes do not turn our close into a reset that destroys the response in flight.
  void LingeringClose() {
    if (closed_) return;
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec || closing_) {
      Close("finished");
      return;
    }
    lingering_ = true;
    read_stopped_ = true;
    linger_bytes_ = 0;
    linger_deadline_ = Clock::now() + kLingerTime;
    WakeAt(linger_deadline_);
    if (!reading_) LingerRead();  // else the pending read continues as the linger read
  }

  void LingerRead() {
    buffer_.clear();
    reading_ = true;
    socket_.async_read_some(
        buffer_.prepare(kLingerReadBytes),
        [self = shared_from_this()](const error_code& ec, std::size_t n) { self->OnRead(ec, n); });
  }

  void OnLingerRead(const error_code& ec, std::size_t n) {
    linger_bytes_ += n;
    if (ec || linger_bytes_ > kLingerMaxBytes) {
      Close("finished");
      return;
    }
    LingerRead();
  }

  void Close(const char* why) {
    if (closed_) return;
    closed_ = true;
    spdlog::debug("http: connection {} closed ({})", id_, why);
    error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
  }

  Core* const core_;
  const uint64_t id_;
  Socket socket_;
  const Executor executor_;                   // copied into Reply closures
  const std::shared_ptr<ThreadInbox> inbox_;  // copied into Reply closures
  Timer timer_;
  beast::flat_buffer buffer_;  // input, reused across requests
  std::string out_;            // serialised responses, reused across writes
  std::optional<wire::RequestParser> parser_;
  std::vector<Slot> ring_;  // requests awaiting their responses, oldest at head_
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  uint64_t next_seq_ = 1;
  ReqState state_ = ReqState::kNone;
  const Clock::time_point accepted_at_;
  Clock::time_point read_deadline_;     // state_ != kNone
  Clock::time_point request_deadline_;  // of the request being read; handler deadline
  Clock::time_point write_deadline_;    // writing_
  Clock::time_point idle_deadline_;     // IsIdle()
  Clock::time_point linger_deadline_;   // lingering_
  std::size_t write_slots_ = 0;
  std::size_t linger_bytes_ = 0;
  bool write_close_ = false;
  bool reading_ = false;  // an async_read_some is pending
  bool writing_ = false;  // an async_write is pending
  bool timer_waiting_ = false;
  bool first_request_ = true;
  bool read_stopped_ = false;  // no more requests will be read
  bool lingering_ = false;
  bool closing_ = false;  // the server is stopping
  bool closed_ = false;
};

// ---------------------------------------------------------------------------------------------
// Rejecter: answers a connection over max_connections with 503 and closes it.
// ---------------------------------------------------------------------------------------------

class Rejecter : public std::enable_shared_from_this<Rejecter> {
 public:
  explicit Rejecter(Socket socket) : stream_(std::move(socket)) {}

  void Start() {
    stream_.expires_after(kLingerTime);
    const std::string& bytes = BusyResponse();
    asio::async_write(stream_, asio::buffer(bytes),
                      [self = shared_from_this()](const error_code& ec, std::size_t) {
                        if (ec) return;
                        error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                        self->Drain();
                      });
  }

 private:
  void Drain() {
    stream_.async_read_some(buffer_.prepare(kLingerReadBytes),
                            [self = shared_from_this()](const error_code& ec, std::size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kLingerMaxBytes) {
                                self->stream_.close();
                                return;
                              }
                              self->Drain();
                            });
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::size_t drained_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Core implementation
// ---------------------------------------------------------------------------------------------

Core::Core(const ServerOptions& opts, api::Handler h)
    : options(opts),
      limits{opts.max_url_bytes, opts.max_header_bytes, opts.max_body_bytes},
      handler(std::move(h)),
      iocs_([&opts] {
        int n = opts.io_threads;
        if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        std::vector<std::unique_ptr<asio::io_context>> iocs;
        // Concurrency hint 1: each is run by one thread (other threads only post to it).
        for (int i = 0; i < n; ++i) iocs.push_back(std::make_unique<asio::io_context>(1));
        return iocs;
      }()) {
  for (const auto& ioc : iocs_) {
    inboxes_.push_back(std::make_shared<ThreadInbox>(gate, ioc->get_executor()));
  }
}

Core::~Core() {
  Stop(std::chrono::milliseconds(0));
  // Destroy what refers to the io_context first; destroying the io_context destroys the
  // handlers still queued in it and with them the remaining sessions (which Unregister).
  backoff_.reset();
  acceptor_.reset();
  iocs_.clear();
}

Status Core::Listen() {
  error_code ec;
  tcp::endpoint endpoint;
  const auto ip = asio::ip::make_address(options.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(ip, options.port);
  } else {
    tcp::resolver resolver(*iocs_[0]);
    auto results =
        resolver.resolve(options.host, std::to_string(options.port), tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return Status::IOError("resolve " + options.host + ": " +
                             Lowercase1(ec ? ec.message() : "no address"));
    }
    endpoint = results.begin()->endpoint();
  }
  const std::string where = options.host + ":" + std::to_string(options.port);
  auto fail = [&](const char* op) {
    return Status::IOError(std::string(op) + " " + where + ": " + Lowercase1(ec.message()));
  };
  acceptor_ = std::make_unique<tcp::acceptor>(*iocs_[0]);
  backoff_ = std::make_unique<asio::steady_timer>(acceptor_->get_executor());
  if (acceptor_->open(endpoint.protocol(), ec); ec) return fail("open");
  if (acceptor_->set_option(asio::socket_base::reuse_address(true), ec); ec) {
    return fail("setsockopt");
  }
  if (acceptor_->bind(endpoint, ec); ec) return fail("bind");
  if (acceptor_->listen(asio::socket_base::max_listen_connections, ec); ec) return fail("listen");
  const tcp::endpoint local = acceptor_->local_endpoint(ec);
  if (ec) return fail("getsockname");
  port = local.port();
  const std::string host = local.address().to_string();
  address = (local.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(port);
  return Status::Ok();
}

Status Core::Run() {
  const std::size_t n = iocs_.size();
  for (auto& ioc : iocs_) work_.push_back(asio::make_work_guard(ioc->get_executor()));
  asio::post(acceptor_->get_executor(), [this] { DoAccept(); });
  try {
    threads_.reserve(n);
    for (auto& ioc : iocs_) {
      threads_.emplace_back([ioc = ioc.get()] {
        Loop loop(*ioc);  // what the handlers keep on this thread (common/loop.h)
        for (;;) {
          try {
            ioc->run();
            return;
          } catch (const std::exception& e) {
            spdlog::error("http: I/O thread caught: {}", e.what());
          } catch (...) {
            spdlog::error("http: I/O thread caught a non-exception");
          }
        }
      });
    }
  } catch (const std::system_error& e) {
    return Status::Internal(std::string("http: cannot start I/O threads: ") + e.what());
  }
  spdlog::info("http: listening on {} ({} I/O threads)", address, n);
  return Status::Ok();
}

void Core::DoAccept() {
  const std::size_t i = next_ioc_++ % iocs_.size();
  acceptor_->async_accept(iocs_[i]->get_executor(), [this, i](const error_code& ec, Socket socket) {
    OnAccept(ec, std::move(socket), inboxes_[i]);
  });
}

void Core::OnAccept(const error_code& ec, Socket socket, std::shared_ptr<ThreadInbox> inbox) {
  if (ec == asio::error::operation_aborted || stopping_ || !acceptor_->is_open()) {
    error_code ignored;
    socket.close(ignored);
    return;
  }
  if (ec) {
    spdlog::debug("http: accept failed: {}", ec.message());
    backoff_->expires_after(kAcceptBackoff);
    backoff_->async_wait([this](const error_code& wait_ec) {
      if (!wait_ec && !stopping_) DoAccept();
    });
    return;
  }
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  if (live_.load() >= options.max_connections) {
    spdlog::debug("http: rejecting a connection: {} live", live_.load());
    std::make_shared<Rejecter>(std::move(socket))->Start();
  } else {
    const uint64_t id = next_id_++;
    spdlog::debug("http: connection {} accepted", id);
    auto session = std::make_shared<Session>(this, std::move(socket), id, std::move(inbox));
    {
      std::lock_guard lock(mu_);
      sessions_.emplace(id, session);
      live_.store(sessions_.size());
    }
    session->Start();
  }
  DoAccept();
}

void Core::Unregister(uint64_t id) {
  std::lock_guard lock(mu_);
  sessions_.erase(id);
  live_.store(sessions_.size());
  sessions_cv_.notify_all();
}

std::vector<std::shared_ptr<Session>> Core::LiveSessions() {
  std::vector<std::shared_ptr<Session>> out;
  std::lock_guard lock(mu_);
  out.reserve(sessions_.size());
  for (auto& [id, weak] : sessions_) {
    if (auto s = weak.lock()) out.push_back(std::move(s));
  }
  return out;
}

bool Core::WaitForSessions(Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  return sessions_cv_.wait_until(lock, deadline, [this] { return sessions_.empty(); });
}

void Core::Stop(std::chrono::milliseconds drain) {
  {
    std::unique_lock lock(stop_mu_);
    if (stop_started_) {
      stop_cv_.wait(lock, [this] { return stopped_; });
      return;
    }
    stop_started_ = true;
  }
  const auto deadline = Clock::now() + drain;
  stopping_ = true;

  if (!threads_.empty()) {
    // 1. Stop accepting (on the acceptor's thread; the acceptor is not thread-safe).
    std::promise<void> closed;
    asio::post(acceptor_->get_executor(), [this, &closed] {
      error_code ignored;
      acceptor_->close(ignored);
      backoff_->cancel();
      closed.set_value();
    });
    closed.get_future().wait();

    // 2. Idle connections close now; busy ones finish their in-flight requests.
    for (auto& s : LiveSessions()) {
      asio::post(s->executor(), [s] { s->Shutdown(); });
    }
    // 3. Drain, then force.
    if (!WaitForSessions(deadline)) {
      auto left = LiveSessions();
      spdlog::info("http: closing {} connections still busy after the drain", left.size());
      for (auto& s : left) asio::post(s->executor(), [s] { s->ForceClose(); });
      left.clear();
      (void)WaitForSessions(Clock::now() + kForceCloseWait);
    }
  }
  // 4. Join the I/O threads.
  work_.clear();
  for (auto& ioc : iocs_) ioc->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  if (acceptor_) {
    error_code ignored;
    acceptor_->close(ignored);
  }
  // 5. From now on replies are dropped; the io_context may be destroyed.
  {
    std::unique_lock lock(gate->mu);
    gate->open = false;
  }
  if (!address.empty()) spdlog::info("http: stopped listening on {}", address);
  {
    std::lock_guard lock(stop_mu_);
    stopped_ = true;
  }
  stop_cv_.notify_all();
}

void Core::Wait() {
  std::unique_lock lock(stop_mu_);
  stop_cv_.wait(lock, [this] { return stopped_; });
}

}  // namespace internal

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

struct Server::Impl final : internal::Core {
  using internal::Core::Core;
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(); }

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options, api::Handler handler) {
  if (!handler) return Status::InvalidArgument("http: no handler");
  auto impl = std::make_unique<Impl>(options, std::move(handler));
  GIMEL_RETURN_IF_ERROR(impl->Listen());
  GIMEL_RETURN_IF_ERROR(impl->Run());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

uint16_t Server::port() const { return impl_->port; }

std::string Server::address() const { return impl_->address; }

void Server::Stop(std::chrono::milliseconds drain) { impl_->Stop(drain); }

void Server::Wait() { impl_->Wait(); }

}  // namespace gimel::http
