#include "acheron/dcss/Session.hh"

#include <sys/socket.h>

#include <random>

#include "acheron/core/Log.hh"

namespace acheron::dcss {

namespace xos = wire::xos;

Session::Session(SessionOptions options, Dhs& dhs) : options_(std::move(options)), dhs_(dhs) {}

Session::~Session() {
  stop();
}

void Session::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void Session::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (active_fd_ >= 0) ::shutdown(active_fd_, SHUT_RDWR);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Session::wait_connections(std::uint64_t n, Duration timeout) const {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [&] { return connections_.load() >= n; });
}

bool Session::sleep_for(Duration d) {
  std::unique_lock lock(mutex_);
  return !cv_.wait_for(lock, d, [&] { return stopping_; });
}

void Session::run() {
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.9, 1.1);
  Duration backoff = options_.reconnect_min;
  bool warned = false;
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
    }
    auto sock = Socket::connect(options_.host, options_.port, options_.connect_timeout);
    if (sock) {
      warned = false;
      {
        std::lock_guard lock(mutex_);
        active_fd_ = sock->fd();
        if (stopping_) sock->shutdown();
      }
      const auto began = Clock::now();
      serve(*sock);
      {
        std::lock_guard lock(mutex_);
        active_fd_ = -1;
      }
      sock->close();
      // A connection that lasted resets the back-off.
      if (Clock::now() - began > options_.reconnect_max) backoff = options_.reconnect_min;
    } else if (!warned) {
      log::warn("dcss: {} (retrying every {:.1f} s at most)", sock.error().message,
                std::chrono::duration<double>(options_.reconnect_max).count());
      warned = true;
    } else {
      log::debug("dcss: {}", sock.error().message);
    }
    const auto wait = std::chrono::duration_cast<Duration>(backoff * jitter(rng));
    if (!sleep_for(wait)) break;
    backoff = std::min(backoff * 2, options_.reconnect_max);
  }
}

void Session::serve(Socket& socket) {
  const auto& name = dhs_.options().name;
  xos::StreamDecoder decoder(options_.limits);
  std::vector<char> buf(64 * 1024);
  // 1. The prompt: a 200-byte xos1 frame (an xos2 one is tolerated).
  const auto prompt_deadline = deadline_after(options_.prompt_timeout);
  std::optional<xos::Frame> prompt;
  while (!prompt) {
    std::size_t got = 0;
    const auto left = prompt_deadline - Clock::now();
    if (left <= Duration::zero()) {
      log::warn("dcss: no stoc_send_client_type from {}:{} within {:.0f} s", options_.host,
                options_.port, std::chrono::duration<double>(options_.prompt_timeout).count());
      return;
    }
    const auto st = socket.read_some(buf.data(), buf.size(), &got,
                                     std::min<Duration>(left, std::chrono::milliseconds(200)));
    if (st == IoStatus::timeout) {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      continue;
    }
    if (st != IoStatus::ok) {
      log::warn("dcss: connection to {}:{} closed before the handshake", options_.host,
                options_.port);
      return;
    }
    decoder.feed(buf.data(), got);
    auto f = decoder.next();
    if (!f) {
      log::error("dcss: bad handshake frame ({})", f.error().message);
      return;
    }
    if (*f) prompt = std::move(**f);
  }
  const auto tokens = xos::tokenize(prompt->text);
  if (tokens.empty() || tokens[0] != "stoc_send_client_type") {
    log::error("dcss: expected stoc_send_client_type, got '{}'", prompt->text);
    return;
  }
  // 2. The answer: exactly 200 bytes, whatever the protocol level.
  auto reply = xos::encode_v1(xos::htos::client_is_hardware(name));
  if (!reply || socket.write_all(*reply, std::chrono::seconds(1)) != IoStatus::ok) {
    log::warn("dcss: could not answer the handshake");
    return;
  }
  const auto epoch = ++connections_;
  received_any_ = false;
  last_rx_ = xos::Protocol::v2;
  dhs_.outbox()->open(epoch);
  dhs_.connected(epoch);
  online_ = true;
  { std::lock_guard lock(mutex_); }
  cv_.notify_all();
  log::info("dcss: {} connected to DCSS at {}:{} (connection {})", name, options_.host,
            options_.port, epoch);

  std::atomic<bool> write_failed{false};
  std::thread writer_thread([&] { writer(socket, epoch, write_failed); });
  const auto accepted_at = Clock::now();
  std::size_t messages = 0;
  std::string why;
  while (true) {
    auto f = decoder.next();
    if (!f) {
      why = "unreadable header from DCSS (" + f.error().message + "); reconnecting";
      break;
    }
    if (*f) {
      auto& frame = **f;
      last_rx_ = frame.protocol;
      received_any_ = true;
      ++messages;
      if (frame.binary_size > 0) {
        log::warn("dcss: skipped {} binary bytes after '{}'", frame.binary_size, frame.text);
      }
      log::trace("dcss <- {}", frame.text);
      dhs_.handle(frame.text);
      continue;
    }
    {
      std::lock_guard lock(mutex_);
      if (stopping_) {
        why = "stopping";
        break;
      }
    }
    if (write_failed) {
      why = "DCSS stopped reading";
      break;
    }
    std::size_t got = 0;
    const auto st = socket.read_some(buf.data(), buf.size(), &got, std::chrono::milliseconds(200));
    if (st == IoStatus::timeout) continue;
    if (st != IoStatus::ok) {
      why = st == IoStatus::closed ? "DCSS closed the connection" : "connection error";
      if (messages == 0 && Clock::now() - accepted_at < std::chrono::seconds(5)) {
        why = "rejected during handshake (name, host or duplicate)";
      }
      break;
    }
    decoder.feed(buf.data(), got);
  }
  online_ = false;
  socket.shutdown();
  dhs_.outbox()->close();
  writer_thread.join();
  dhs_.disconnected();
  if (why == "stopping") {
    log::info("dcss: {} disconnected", name);
  } else {
    log::warn("dcss: {}: {}", name, why);
  }
}

void Session::writer(Socket& socket, std::uint64_t epoch, std::atomic<bool>& failed) {
  auto& outbox = *dhs_.outbox();
  while (true) {
    auto text = outbox.pop(std::chrono::milliseconds(200));
    if (!text) {
      if (!outbox.is_open() || outbox.epoch() != epoch) return;
      continue;
    }
    xos::Protocol p = xos::Protocol::v2;
    switch (options_.protocol) {
      case ProtocolChoice::v1:
        p = xos::Protocol::v1;
        break;
      case ProtocolChoice::v2:
        p = xos::Protocol::v2;
        break;
      case ProtocolChoice::automatic:
        p = received_any_ ? last_rx_.load() : xos::Protocol::v2;
        break;
    }
    if (p == xos::Protocol::v1) {
      // DCSS reads 200-byte frames from a level-1 DHS: longer text cannot
      // reach it. Send what fits, in whole tokens, so the message (an
      // operation's completion above all) still arrives, and say so.
      auto fit = xos::fit_v1(*text);
      if (fit.truncated) {
        truncated_.fetch_add(1);
        log::error(
            "dcss: {} bytes do not fit a 200-byte xos1 frame; sent the first {} ('{}...'); send "
            "long results as several updates or use protocol level 2",
            fit.original_size, fit.text.size(), fit.text.substr(0, 60));
        *text = std::move(fit.text);
      }
    }
    auto bytes = xos::encode(p, *text);
    if (!bytes) {
      log::error("dcss: cannot send '{}' ({})", text->substr(0, 60), bytes.error().message);
      continue;
    }
    log::trace("dcss -> {}", *text);
    const auto st = socket.write_all(*bytes, options_.write_timeout);
    if (st != IoStatus::ok) {
      failed = true;
      socket.shutdown();
      return;
    }
  }
}

}  // namespace acheron::dcss
