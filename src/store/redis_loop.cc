#include "store/redis_loop.h"

#include <hiredis/hiredis.h>

#include <array>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <condition_variable>
#include <deque>
#include <iterator>
#include <string>

#include "common/defer.h"

namespace gimel::store::redis {

namespace asio = boost::asio;
using boost::system::error_code;

// One connection, driven by one loop. Everything but the members guarded by mu_ belongs to
// the loop's thread; handlers hold the connection (shared_ptr) and carry the epoch they were
// started in, so a handler of a connection since reset does nothing.
class LoopConnection final : public LoopLocal, public std::enable_shared_from_this<LoopConnection> {
 public:
  LoopConnection(asio::io_context& context, const ConnectionOptions& options,
                 std::shared_ptr<std::atomic<uint64_t>> connects)
      : options_(options),
        connects_(std::move(connects)),
        socket_(context),
        resolver_(context),
        timer_(context),
        rbuf_(std::make_unique<std::array<char, kReadBuffer>>()) {}

  ~LoopConnection() override {
    if (reader_ != nullptr) redisReaderFree(reader_);
  }

  void Send(std::unique_ptr<PipelineOp> op) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (closed_) {
        Status why = closed_why_;
        lock.unlock();
        op->Done(std::move(why), {});
        return;
      }
      if (state_ == State::kDisconnected && InBackoff()) {
        lock.unlock();
        op->Done(backoff_.last_error(), {});
        return;
      }
      out_.append(op->commands);
      unsent_ += op->count;
      ops_.push_back(std::move(op));
    }
    if (state_ == State::kDisconnected) {
      Connect();
    } else if (state_ == State::kConnected) {
      ScheduleFlush();
    }
  }

  void Close(const Status& why) {
    std::vector<std::unique_ptr<PipelineOp>> ops;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!closed_) {
        closed_ = true;
        closed_why_ = why;
      }
      // The loop's thread may be running callbacks of ops it took: they may use the store.
      cv_.wait(lock, [this] { return !completing_; });
      ops.assign(std::make_move_iterator(ops_.begin()), std::make_move_iterator(ops_.end()));
      ops_.clear();
    }
    DeferScope scope;
    for (auto& op : ops) op->Done(why, {});
  }

  void OnLoopExit() override {
    Close(
        Status::Unavailable("redis " + options_.endpoint.ToString() + ": the I/O thread stopped"));
    Reset();
  }

 private:
  static constexpr size_t kReadBuffer = 16 * 1024;
  enum class State { kDisconnected, kConnecting, kConnected };

  // Inside the backoff window after a failed connection, unless a connection to the server
  // has been established since (by any connection of this backend: the server is back).
  bool InBackoff() const {
    return backoff_.Active() && connects_->load(std::memory_order_relaxed) == connects_at_failure_;
  }

  bool IsClosed() {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

  Status Unavailable(std::string_view why) const {
    return Status::Unavailable("redis " + options_.endpoint.ToString() + ": " + std::string(why));
  }

  // ---- Connecting ----

  void Connect() {
    state_ = State::kConnecting;
    ++epoch_;
    reader_ = redisReaderCreate();
    // AUTH [username] password, then SELECT db, ahead of the queued commands.
    std::string handshake;
    handshake_.clear();
    if (!options_.password.empty() || !options_.username.empty()) {
      if (options_.username.empty()) {
        AppendCommand(&handshake, {"AUTH", options_.password});
      } else {
        AppendCommand(&handshake, {"AUTH", options_.username, options_.password});
      }
      handshake_.push_back(Handshake::kAuth);
    }
    if (options_.db != 0) {
      AppendCommand(&handshake, {"SELECT", std::to_string(options_.db)});
      handshake_.push_back(Handshake::kSelect);
    }
    out_.insert(0, handshake);
    unsent_ += handshake_.size();
    ArmTimer(options_.connect_timeout);

    const Endpoint& ep = options_.endpoint;
    if (!ep.unix_socket.empty()) {
      ConnectTo(asio::local::stream_protocol::endpoint(ep.unix_socket));
      return;
    }
    error_code ec;
    const asio::ip::address address = asio::ip::make_address(ep.host, ec);
    if (!ec) {
      ConnectTo(asio::ip::tcp::endpoint(address, static_cast<uint16_t>(ep.port)));
      return;
    }
    resolver_.async_resolve(
        ep.host, std::to_string(ep.port),
        [self = shared_from_this(), epoch = epoch_](const error_code& ec,
                                                    asio::ip::tcp::resolver::results_type results) {
          if (epoch != self->epoch_) return;
          if (ec || results.empty()) {
            return self->ConnectFailed(self->Unavailable("cannot connect: cannot resolve: " +
                                                         (ec ? ec.message() : "no address")));
          }
          self->ConnectTo(results.begin()->endpoint());
        });
  }

  template <typename Endpoint>
  void ConnectTo(const Endpoint& endpoint) {
    tcp_ = std::is_same_v<Endpoint, asio::ip::tcp::endpoint>;
    socket_.async_connect(
        asio::generic::stream_protocol::endpoint(endpoint),
        [self = shared_from_this(), epoch = epoch_](const error_code& ec) {
          if (epoch != self->epoch_) return;
          if (ec) return self->ConnectFailed(self->Unavailable("cannot connect: " + ec.message()));
          self->Connected();
        });
  }

  void Connected() {
    if (tcp_) {
      error_code ignored;
      socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
      socket_.set_option(asio::socket_base::keep_alive(true), ignored);
    }
    CancelTimer();
    state_ = State::kConnected;
    connects_->fetch_add(1);
    if (handshake_.empty()) Succeeded();
    StartRead();
    Flush();
  }

  void Succeeded() { backoff_.Succeeded(); }

  // A connection attempt failed: fail what waits for it and back off.
  void ConnectFailed(Status s) {
    backoff_.Failed(options_, s);
    connects_at_failure_ = connects_->load();
    Fail(std::move(s));
  }

  // ---- Writing ----

  // Everything Sent during this turn of the loop goes out in one write, after it.
  void ScheduleFlush() {
    if (flush_posted_ || writing_) return;
    flush_posted_ = true;
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      self->flush_posted_ = false;
      self->Flush();
    });
  }

  void Flush() {
    if (state_ != State::kConnected || writing_ || out_.empty()) return;
    if (IsClosed()) return Reset();
    if (awaited_ == 0) last_progress_ = Clock::now();
    awaited_ += unsent_;
    unsent_ = 0;
    wbuf_.swap(out_);
    out_.clear();
    writing_ = true;
    ArmTimer(options_.command_timeout);
    asio::async_write(socket_, asio::buffer(wbuf_),
                      [self = shared_from_this(), epoch = epoch_](const error_code& ec, size_t) {
                        if (epoch != self->epoch_) return;
                        self->writing_ = false;
                        if (ec) return self->Fail(self->Unavailable(ec.message()));
                        self->Flush();  // what was sent while this was written
                      });
  }

  // ---- Reading ----

  void StartRead() {
    socket_.async_read_some(asio::buffer(*rbuf_), [self = shared_from_this(), epoch = epoch_](
                                                      const error_code& ec, size_t n) {
      if (epoch != self->epoch_) return;
      self->OnRead(ec, n);
    });
  }

  void OnRead(const error_code& ec, size_t n) {
    if (ec) {
      return Fail(
          Unavailable(ec == asio::error::eof ? "connection closed by the server" : ec.message()));
    }
    if (redisReaderFeed(reader_, rbuf_->data(), n) != REDIS_OK) {
      return Fail(Unavailable("protocol error"));
    }
    bool progress = false;
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
        return Fail(Unavailable(std::string("protocol error: ") + reader_->errstr));
      }
      if (raw == nullptr) break;
      Value v = Value::FromHiredis(*static_cast<redisReply*>(raw));
      freeReplyObject(raw);
      if (awaited_ == 0) return Fail(Unavailable("unexpected reply"));
      --awaited_;
      progress = true;
      if (handshake_done_ < handshake_.size()) {
        const Handshake step = handshake_[handshake_done_++];
        if (v.is_error()) {
          return ConnectFailed(
              Unavailable(step == Handshake::kAuth
                              ? "authentication failed: " + v.str
                              : "SELECT " + std::to_string(options_.db) + " failed: " + v.str));
        }
        if (handshake_done_ == handshake_.size()) Succeeded();
        continue;
      }
      replies_.push_back(std::move(v));
    }
    if (progress) last_progress_ = Clock::now();
    const uint64_t epoch = epoch_;
    CompleteReady();
    if (epoch == epoch_) StartRead();
  }

  // Completes the ops whose replies have all arrived, in order.
  void CompleteReady() {
    size_t used = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) {
        // Close took the ops; the replies are no one's.
        Reset();
        return;
      }
      while (!ops_.empty() && replies_.size() - used >= ops_.front()->count) {
        used += ops_.front()->count;
        done_.push_back(std::move(ops_.front()));
        ops_.pop_front();
      }
      if (done_.empty()) return;
      completing_ = true;
    }
    {
      DeferScope scope;  // one hand-over per I/O thread for all of them (common/defer.h)
      size_t next = 0;
      for (auto& op : done_) {
        const size_t n = op->count;
        op->Done(Status::Ok(), std::span<Value>(replies_.data() + next, n));
        op.reset();
        next += n;
      }
    }
    done_.clear();
    replies_.erase(replies_.begin(), replies_.begin() + static_cast<ptrdiff_t>(used));
    {
      std::lock_guard<std::mutex> lock(mu_);
      completing_ = false;
    }
    cv_.notify_all();
  }

  // ---- Timeouts ----

  // Connecting: fails the attempt after `after`. Connected: fails the connection when replies
  // are awaited and none has arrived for the command timeout (checked at most every `after`).
  void ArmTimer(std::chrono::milliseconds after) {
    if (timer_armed_) return;
    timer_armed_ = true;
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this(), seq = ++timer_seq_](const error_code& ec) {
      if (seq != self->timer_seq_) return;
      self->timer_armed_ = false;
      if (!ec) self->OnTimer();
    });
  }

  void CancelTimer() {
    ++timer_seq_;
    timer_armed_ = false;
    timer_.cancel();
  }

  void OnTimer() {
    if (state_ == State::kConnecting)
      return ConnectFailed(Unavailable("cannot connect: timed out"));
    if (state_ != State::kConnected || awaited_ == 0) return;
    const auto waited = Clock::now() - last_progress_;
    if (waited >= options_.command_timeout) return Fail(Unavailable("command timed out"));
    ArmTimer(
        std::chrono::duration_cast<std::chrono::milliseconds>(options_.command_timeout - waited) +
        std::chrono::milliseconds(1));
  }

  // ---- Failing ----

  // Drops the connection and everything in flight on it; the next Send reconnects.
  void Reset() {
    ++epoch_;
    state_ = State::kDisconnected;
    error_code ignored;
    socket_.close(ignored);
    resolver_.cancel();
    CancelTimer();
    out_.clear();
    unsent_ = 0;
    awaited_ = 0;
    writing_ = false;
    handshake_.clear();
    handshake_done_ = 0;
    replies_.clear();
    if (reader_ != nullptr) {
      redisReaderFree(reader_);
      reader_ = nullptr;
    }
  }

  // Reset, and fail every op not complete with s.
  void Fail(Status s) {
    Reset();
    std::vector<std::unique_ptr<PipelineOp>> ops;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ops_.empty()) return;
      ops.assign(std::make_move_iterator(ops_.begin()), std::make_move_iterator(ops_.end()));
      ops_.clear();
      completing_ = true;
    }
    {
      DeferScope scope;
      for (auto& op : ops) {
        op->Done(s, {});
        op.reset();
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      completing_ = false;
    }
    cv_.notify_all();
  }

  enum class Handshake { kAuth, kSelect };

  const ConnectionOptions options_;
  const std::shared_ptr<std::atomic<uint64_t>> connects_;
  asio::generic::stream_protocol::socket socket_;
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer timer_;
  const std::unique_ptr<std::array<char, kReadBuffer>> rbuf_;

  State state_ = State::kDisconnected;
  uint64_t epoch_ = 0;  // incremented by each Connect and Reset
  bool tcp_ = false;
  redisReader* reader_ = nullptr;
  std::vector<Handshake> handshake_;  // commands sent ahead of the first ops
  size_t handshake_done_ = 0;         // replies of handshake_ received
  std::string out_;                   // commands not yet written
  size_t unsent_ = 0;                 // the number of commands in out_
  std::string wbuf_;                  // commands being written
  bool writing_ = false;
  bool flush_posted_ = false;
  size_t awaited_ = 0;  // replies of written commands not yet received
  Clock::time_point last_progress_{};
  std::vector<Value> replies_;  // received, for ops_ from the front
  std::vector<std::unique_ptr<PipelineOp>> done_;
  bool timer_armed_ = false;
  uint64_t timer_seq_ = 0;
  Backoff backoff_;                   // after a failed connection attempt
  uint64_t connects_at_failure_ = 0;  // connects_ then

  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;                          // guarded by mu_
  Status closed_why_;                            // guarded by mu_
  bool completing_ = false;                      // guarded by mu_: ops taken, not yet done
  std::deque<std::unique_ptr<PipelineOp>> ops_;  // guarded by mu_: sent order, not complete
};

LoopConnections::LoopConnections(ConnectionOptions options,
                                 std::shared_ptr<std::atomic<uint64_t>> connects)
    : options_(std::move(options)), connects_(std::move(connects)) {}

LoopConnections::~LoopConnections() { Shutdown(); }

bool LoopConnections::SendOnThisThread(std::unique_ptr<PipelineOp>* op) {
  Loop* loop = Loop::Current();
  if (loop == nullptr) return false;
  auto* conn = static_cast<LoopConnection*>(loop->Find(key_));
  if (conn == nullptr) {
    auto created = std::make_shared<LoopConnection>(loop->context(), options_, connects_);
    bool closed = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed = closed_;
      if (!closed) all_.push_back(created);
    }
    if (closed) {
      (*op)->Done(Status::Unavailable("redis store closed"), {});
      return true;
    }
    conn = static_cast<LoopConnection*>(loop->Set(key_, std::move(created)));
  }
  conn->Send(std::move(*op));
  return true;
}

void LoopConnections::Shutdown() {
  std::vector<std::weak_ptr<LoopConnection>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    all.swap(all_);
  }
  for (auto& weak : all) {
    if (std::shared_ptr<LoopConnection> conn = weak.lock()) {
      conn->Close(Status::Unavailable("redis store closed"));
    }
  }
}

}  // namespace gimel::store::redis
