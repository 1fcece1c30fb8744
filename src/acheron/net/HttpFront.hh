// A small HTTP status front (cpp-httplib): a live dashboard page per service,
// JSON status, server-sent events and Prometheus metrics. It runs on its own
// threads and reads state only through what each source hands it: a status
// snapshot function (thread-safe) and a prometheus::Registry (thread-safe).
// It never touches a ZeroMQ socket.
//
// Routes (GET):
//   /                        overview page: every service, with links
//   /service/<name>          the service's live page (updates by SSE)
//   /api/services            JSON: [{"name", "doc"}]
//   /api/status/<name>       JSON: the service's status snapshot
//   /events/<name>           text/event-stream: the snapshot about once a second
//   /metrics                 Prometheus text format 0.0.4, every registry
//   /static/<file>           the pages' JavaScript and CSS (from the binary);
//                            /static/chart.js from Debian's libjs-chart.js if present
// Anything else is 404; unknown services are 404 with a JSON error.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace prometheus {
class Registry;
}

namespace acheron::net {

struct HttpOptions {
  // HOST:PORT to listen on; port 0 binds an ephemeral port (HttpFront::port()).
  // Loopback by default: the pages show internals (worker identities, load).
  std::string bind = "127.0.0.1:0";
  // Threads serving connections; each open event stream holds one.
  std::size_t threads = 8;
  // Event streams open at once (beyond: 503), below `threads` so pages and
  // /metrics still get a thread.
  std::size_t max_event_streams = 4;
  // Accepted connections waiting for a thread; beyond this a connection is
  // answered 503 on the accepting thread.
  std::size_t max_queued_connections = 64;
  // Largest request body (status routes take none) and header block.
  std::size_t max_request_bytes = 64 * 1024;
  std::chrono::seconds read_timeout{5};
  std::chrono::seconds write_timeout{5};
  // Interval of server-sent events.
  std::chrono::milliseconds event_interval{1000};
  // Served at /static/chart.js when it exists (Debian's libjs-chart.js);
  // the pages do not need it.
  std::string chart_js = "/usr/share/javascript/chart.js/chart.min.js";

  // Throws SetupError naming the first invalid field.
  void validate() const;
};

// HOST and PORT of a HOST:PORT address ("[::1]:8080" for IPv6). Throws
// SetupError on an empty host, a missing or non-numeric port, or a port over
// 65535.
struct HostPort {
  std::string host;
  int port = 0;
};
HostPort parse_host_port(const std::string& address);

// One service as the front shows it.
struct HttpSource {
  std::string name;  // URL-safe: letters, digits, '-', '_', '.'
  std::string doc;
  // The status snapshot (JSON object); called from HTTP threads. Empty: {}.
  std::function<nlohmann::json()> status;
  // Its metrics; null: none.
  std::shared_ptr<prometheus::Registry> metrics;
  // Called (from HTTP threads, possibly at once) before `metrics` is
  // collected: lets a service bring gauges and counters up to date from its
  // own figures at scrape time instead of on its hot paths. Empty: nothing.
  std::function<void()> refresh = {};
};

// The services to show, asked on every request (services may come and go).
using HttpSources = std::function<std::vector<HttpSource>()>;

class HttpFront final {
 public:
  // Validates the options, binds and starts serving on its own threads.
  // Throws SetupError if the address is invalid or cannot be bound.
  HttpFront(HttpOptions options, HttpSources sources);
  ~HttpFront();  // stops
  HttpFront(const HttpFront&) = delete;
  HttpFront& operator=(const HttpFront&) = delete;

  // The bound port (the real one for port 0).
  int port() const noexcept;
  // http://HOST:PORT/ as bound.
  std::string url() const;
  // Closes the listening socket, ends event streams and joins the threads.
  // Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Every family of every source's registry in Prometheus text format. Family
// names must be unique across sources (each service prefixes its own).
std::string metrics_text(const std::vector<HttpSource>& sources);

}  // namespace acheron::net
