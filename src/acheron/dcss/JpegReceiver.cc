#include "acheron/dcss/JpegReceiver.hh"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"

namespace acheron::dcss {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace {

// Threads serving connections: every connection is asynchronous, so these
// only bound how many image callbacks (which may write debug files) run at once.
constexpr int kServeThreads = 2;
// After refusing a request whose body was not read, the rest of it is read
// and discarded for at most this long, so the refusal reaches the client
// (closing with unread data would reset the connection and lose the reply).
constexpr auto kLinger = std::chrono::seconds(1);
// A warning of one kind at most this often (a flood of refusals must not flood the log).
constexpr auto kNoticeInterval = std::chrono::seconds(10);

constexpr std::size_t kMinHeaderBytes = 1024, kMaxHeaderBytes = 1u << 20;
constexpr std::size_t kMaxConnections = 4096;
constexpr std::size_t kMaxToken = 256;

constexpr std::string_view kOverLimit =
    "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

bool token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The first value of query parameter `key` in a request target, percent-decoded.
std::optional<std::string> query_value(std::string_view target, std::string_view key) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const auto pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) != key) continue;
    const auto raw = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    std::string value;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '%' && i + 2 < raw.size() && hex_value(raw[i + 1]) >= 0 &&
          hex_value(raw[i + 2]) >= 0) {
        value += static_cast<char>(hex_value(raw[i + 1]) * 16 + hex_value(raw[i + 2]));
        i += 2;
      } else {
        value += raw[i] == '+' ? ' ' : raw[i];
      }
    }
    return value;
  }
  return std::nullopt;
}

// Compares two secrets in time independent of where they differ and of their
// lengths: both are hashed to a fixed size first.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char ha[crypto_generichash_BYTES], hb[crypto_generichash_BYTES];
  crypto_generichash(ha, sizeof ha, reinterpret_cast<const unsigned char*>(a.data()), a.size(),
                     nullptr, 0);
  crypto_generichash(hb, sizeof hb, reinterpret_cast<const unsigned char*>(b.data()), b.size(),
                     nullptr, 0);
  return sodium_memcmp(ha, hb, sizeof ha) == 0;
}

std::string_view sv(beast::string_view s) {
  return {s.data(), s.size()};
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::optional<std::string> JpegReceiverOptions::problem() const {
  if (bind.empty()) return "bind must name an address (127.0.0.1, 0.0.0.0 or this host's)";
  if (max_bytes < 1) return "max_bytes must be at least 1";
  if (max_header_bytes < kMinHeaderBytes || max_header_bytes > kMaxHeaderBytes) {
    return "max_header_bytes must be " + std::to_string(kMinHeaderBytes) + "-" +
           std::to_string(kMaxHeaderBytes);
  }
  if (max_connections < 1 || max_connections > kMaxConnections) {
    return "max_connections must be 1-" + std::to_string(kMaxConnections);
  }
  if (!(request_timeout_s > 0) || !std::isfinite(request_timeout_s) || request_timeout_s > 3600) {
    return "request_timeout_s must be a positive number of seconds (at most 3600)";
  }
  if (token.size() > kMaxToken || !std::all_of(token.begin(), token.end(), token_char)) {
    return "token must be at most " + std::to_string(kMaxToken) +
           " letters, digits or -._~ (it is sent in the URL)";
  }
  return std::nullopt;
}

struct JpegReceiver::Impl {
  Impl(const JpegReceiverOptions& o, const Callback& cb, Counters& c)
      : options(o),
        callback(cb),
        counters(c),
        request_timeout(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(o.request_timeout_s))) {}

  void accept();
  void on_accept(error_code ec, tcp::socket socket);
  // A warning about `what` from `peer`, at most once per kNoticeInterval per kind.
  void notice(const char* what, const std::string& peer);

  const JpegReceiverOptions& options;
  const Callback& callback;
  Counters& counters;
  const std::chrono::steady_clock::duration request_timeout;

  std::mutex notice_mutex;
  struct Notice {
    std::chrono::steady_clock::time_point last{};
    std::uint64_t count = 0;
  };
  std::map<std::string, Notice, std::less<>> notices;

  net::io_context ioc{kServeThreads};
  tcp::acceptor acceptor{ioc};
  net::steady_timer accept_retry{ioc};
  std::vector<std::thread> threads;
};

namespace {

// One connection: one request within the deadline, one reply, closed.
class Session final : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, JpegReceiver::Impl& rx) : stream_(std::move(socket)), rx_(rx) {
    error_code ec;
    const auto peer = stream_.socket().remote_endpoint(ec);
    peer_ = ec ? std::string("?") : peer.address().to_string() + ":" + std::to_string(peer.port());
  }
  ~Session() { --rx_.counters.connections; }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::read_header, shared_from_this()));
  }

 private:
  enum class Drain : bool { no, yes };

  void read_header() {
    // One absolute deadline for the headers, a 100 Continue and the body:
    // Beast's stream times out every operation pending at that instant.
    stream_.expires_after(rx_.request_timeout);
    parser_.header_limit(static_cast<std::uint32_t>(rx_.options.max_header_bytes));
    parser_.body_limit(static_cast<std::uint64_t>(rx_.options.max_bytes));
    http::async_read_header(stream_, buffer_, parser_,
                            beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(error_code ec, std::size_t) {
    if (ec) return on_read_error(ec);
    const auto& req = parser_.get();
    if (req.method() != http::verb::post) {
      return refuse(http::status::method_not_allowed, "only POST is accepted");
    }
    if (!rx_.options.token.empty()) {
      const auto token = query_value(sv(req.target()), "token");
      if (!token || !same_secret(*token, rx_.options.token)) {
        ++rx_.counters.unauthorized;
        rx_.notice("refused a POST without the right token (401)", peer_);
        return reply(http::status::unauthorized, "a valid ?token= is required", Drain::yes);
      }
    }
    if (!parser_.content_length() && !parser_.chunked()) {
      return refuse(http::status::length_required, "Content-Length is required");
    }
    const auto type = lower(sv(req[http::field::content_type]));
    if (type.find("image/jpeg") == std::string::npos &&
        type.find("image/jpg") == std::string::npos &&
        type.find("image/png") == std::string::npos) {
      return refuse(http::status::unsupported_media_type, "image/jpeg or image/png only");
    }
    if (parser_.content_length() && *parser_.content_length() > rx_.options.max_bytes) {
      return refuse(http::status::payload_too_large, "the image is larger than max_bytes");
    }
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      continue_.emplace(http::status::continue_, req.version());
      return http::async_write(
          stream_, *continue_,
          beast::bind_front_handler(&Session::on_continue, shared_from_this()));
    }
    read_body();
  }

  void on_continue(error_code ec, std::size_t) {
    if (ec) return on_read_error(ec);
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, parser_,
                     beast::bind_front_handler(&Session::on_body, shared_from_this()));
  }

  void on_body(error_code ec, std::size_t) {
    if (ec == http::error::body_limit) {
      return refuse(http::status::payload_too_large, "the image is larger than max_bytes");
    }
    if (ec) return on_read_error(ec);
    auto& req = parser_.get();
    const bool png =
        lower(sv(req[http::field::content_type])).find("image/png") != std::string::npos;
    ++rx_.counters.received;
    try {
      rx_.callback(std::move(req.body()), png ? "image/png" : "image/jpeg");
    } catch (const std::exception& e) {
      log::error("loop: JPEG receiver: the image handler failed: {}", e.what());
      return reply(http::status::internal_server_error, "the image was not handled", Drain::no);
    }
    reply(http::status::ok, "", Drain::no);
  }

  void on_read_error(error_code ec) {
    if (ec == beast::error::timeout) {
      ++rx_.counters.timed_out;
      rx_.notice("closed a connection that did not send its request in time", peer_);
      return;  // Beast has closed the socket
    }
    if (ec == http::error::header_limit) {
      return refuse(http::status::request_header_fields_too_large,
                    "the request headers are larger than max_header_bytes");
    }
    if (ec == http::error::body_limit) {
      return refuse(http::status::payload_too_large, "the image is larger than max_bytes");
    }
    if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return refuse(http::status::bad_request, "malformed request");
    }
    // The peer went away (or reset): nothing to answer.
  }

  void refuse(http::status status, std::string text) {
    ++rx_.counters.rejected;
    log::debug("loop: JPEG receiver: {} to {} ({})", static_cast<int>(status), peer_, text);
    reply(status, std::move(text), Drain::yes);
  }

  void reply(http::status status, std::string text, Drain drain) {
    reply_.emplace(status, 11);
    reply_->set(http::field::connection, "close");
    reply_->set(http::field::content_type, "text/plain");
    reply_->body() = text.empty() ? std::string() : text + "\n";
    reply_->keep_alive(false);
    reply_->prepare_payload();
    // The reply gets its own bounded time (the request's may be nearly used up).
    stream_.expires_after(rx_.request_timeout);
    http::async_write(stream_, *reply_,
                      [self = shared_from_this(), drain](error_code ec, std::size_t) {
                        if (ec) return;
                        self->after_reply(drain);
                      });
  }

  void after_reply(Drain drain) {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (drain == Drain::no) {
      stream_.socket().close(ignored);
      return;
    }
    stream_.expires_after(
        std::min<std::chrono::steady_clock::duration>(kLinger, rx_.request_timeout));
    discard();
  }

  // Reads and drops what the client still sends until it closes or the linger ends.
  void discard() {
    stream_.async_read_some(net::buffer(scratch_),
                            [self = shared_from_this()](error_code ec, std::size_t) {
                              if (!ec) self->discard();
                            });
  }

  beast::tcp_stream stream_;
  JpegReceiver::Impl& rx_;
  std::string peer_;
  beast::flat_buffer buffer_;
  http::request_parser<http::string_body> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  std::optional<http::response<http::string_body>> reply_;
  std::array<char, 4096> scratch_{};
};

}  // namespace

void JpegReceiver::Impl::accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void JpegReceiver::Impl::on_accept(error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
  if (ec) {
    // Out of descriptors, typically: try again shortly instead of spinning.
    notice("cannot accept a connection", ec.message());
    accept_retry.expires_after(std::chrono::milliseconds(100));
    accept_retry.async_wait([this](error_code e) {
      if (!e) accept();
    });
    return;
  }
  if (counters.connections.load() >= options.max_connections) {
    ++counters.refused;
    error_code ignored;
    const auto peer = socket.remote_endpoint(ignored);
    notice("refused a connection over max_connections (503)",
           ignored ? std::string("?") : peer.address().to_string());
    // Best effort, never blocking: a fresh socket's send buffer takes it.
    socket.non_blocking(true, ignored);
    net::write(socket, net::buffer(kOverLimit), ignored);
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  } else {
    ++counters.connections;
    std::make_shared<Session>(std::move(socket), *this)->start();
  }
  accept();
}

void JpegReceiver::Impl::notice(const char* what, const std::string& peer) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(notice_mutex);
  auto& n = notices[what];
  ++n.count;
  if (n.last != std::chrono::steady_clock::time_point{} && now - n.last < kNoticeInterval) return;
  if (n.count == 1) {
    log::warn("loop: JPEG receiver {} (from {})", what, peer);
  } else {
    log::warn("loop: JPEG receiver {} (from {}; {} times since the last such message)", what, peer,
              n.count);
  }
  n.last = now;
  n.count = 0;
}

JpegReceiver::JpegReceiver(JpegReceiverOptions options, Callback callback)
    : options_(std::move(options)), callback_(std::move(callback)), port_(options_.port) {
  if (auto p = options_.problem()) {
    throw SetupError("JPEG receiver options are invalid (" + *p + ") fix loop.jpeg_receiver");
  }
  if (!callback_) throw SetupError("JPEG receiver needs an image callback (none given) pass one");
  if (sodium_init() < 0) throw SetupError("libsodium failed to initialise (no entropy?) retry");
}

JpegReceiver::~JpegReceiver() {
  stop();
}

void JpegReceiver::start() {
  if (running_) return;
  auto impl = std::make_unique<Impl>(options_, callback_, counters_);
  const std::string where = options_.bind + ":" + std::to_string(options_.port);
  error_code ec;
  tcp::endpoint endpoint;
  const auto address = net::ip::make_address(options_.bind, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, options_.port);
  } else {
    tcp::resolver resolver(impl->ioc);
    const auto found = resolver.resolve(options_.bind, std::to_string(options_.port), ec);
    if (ec || found.empty()) {
      throw SetupError("JPEG receiver cannot resolve '" + options_.bind + "' (" + ec.message() +
                       ") set loop.jpeg_receiver.bind to an address of this host");
    }
    endpoint = found.begin()->endpoint();
  }
  auto& a = impl->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    throw SetupError("JPEG receiver cannot listen on " + where + " (" + ec.message() +
                     ") set loop.jpeg_receiver.bind and .port");
  }
  const auto bound = a.local_endpoint();
  port_ = bound.port();
  address_ = bound.address().to_string();
  impl->accept();
  for (int i = 0; i < kServeThreads; ++i) {
    impl->threads.emplace_back([&ioc = impl->ioc] {
      while (true) {
        try {
          ioc.run();
          return;
        } catch (const std::exception& e) {
          log::error("loop: JPEG receiver: {}", e.what());
        }
      }
    });
  }
  impl_ = std::move(impl);
  running_ = true;
  log::info(
      "loop: JPEG receiver on {}:{} ({}; requests within {} s, at most {} connections, {} header "
      "bytes, {} body bytes)",
      address_, port_, options_.token.empty() ? "no token required" : "token required",
      options_.request_timeout_s, options_.max_connections, options_.max_header_bytes,
      options_.max_bytes);
}

void JpegReceiver::stop() {
  if (!running_.exchange(false)) return;
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_.reset();  // closes every connection still open
}

}  // namespace acheron::dcss
