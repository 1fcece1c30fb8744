#include "acheron/net/HttpFront.hh"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"
#include "acheron/net/WebAssets.hh"

namespace acheron::net {
namespace {

// Set on the accepting thread while it answers a connection the pool had no
// room for: the pre-routing handler then answers 503 at once.
thread_local bool http_overloaded = false;

// httplib's thread pool with a bounded queue. httplib 0.11 gives a full
// queue no way to refuse, so an extra connection is served on the accepting
// thread (answered 503, bounded by the read timeout).
class BoundedPool final : public httplib::TaskQueue {
 public:
  BoundedPool(std::size_t threads, std::size_t max_queued) : max_queued_(max_queued) {
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  }
  ~BoundedPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    {
      std::unique_lock lock(mutex_);
      if (!stopping_ && queue_.size() < max_queued_) {
        queue_.push_back(std::move(fn));
        cv_.notify_one();
        return;
      }
    }
    http_overloaded = true;
    fn();  // closes the socket when done
    http_overloaded = false;
  }

  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      if (stopping_ && threads_.empty()) return;
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and nothing left to close
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
    }
  }

  std::size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

std::string_view content_type(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  return "application/octet-stream";
}

const web::Asset* find_asset(std::string_view name) {
  for (const auto& a : web::assets()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

void send_json_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(nlohmann::json{{"error", message}}.dump(), "application/json");
}

// The snapshot of one source; a throwing provider gives an "error" member
// instead (the page shows it), never a failed connection.
nlohmann::json snapshot_of(const HttpSource& s) {
  nlohmann::json j;
  try {
    j = s.status ? s.status() : nlohmann::json::object();
  } catch (const std::exception& e) {
    j = nlohmann::json{{"error", std::string("status snapshot failed: ") + e.what()}};
  }
  if (!j.is_object()) j = nlohmann::json{{"value", std::move(j)}};
  j["service"] = s.name;
  return j;
}

}  // namespace

void HttpOptions::validate() const {
  parse_host_port(bind);
  if (threads < 2) {
    throw SetupError("http threads is " + std::to_string(threads) +
                     " (an event stream holds a thread, so pages need another) use at least 2");
  }
  if (max_event_streams == 0 || max_event_streams >= threads) {
    throw SetupError("http max_event_streams is " + std::to_string(max_event_streams) + " with " +
                     std::to_string(threads) +
                     " threads (streams would starve the pages) use 1 to threads - 1");
  }
  if (max_queued_connections == 0) {
    throw SetupError(
        "http max_queued_connections is 0 (every connection would be refused) "
        "use a positive number such as 64");
  }
  if (max_request_bytes < 1024) {
    throw SetupError("http max_request_bytes is " + std::to_string(max_request_bytes) +
                     " (too small for a browser's request headers) use at least 1024");
  }
  if (read_timeout.count() <= 0 || write_timeout.count() <= 0) {
    throw SetupError(
        "http read/write timeout is not positive (a stalled client would hold a "
        "thread for ever) use a few seconds");
  }
  if (event_interval.count() <= 0) {
    throw SetupError(
        "http event_interval is not positive (events would be sent in a busy loop) "
        "use 1000 ms");
  }
}

HostPort parse_host_port(const std::string& address) {
  auto fail = [&](const std::string& why) -> HostPort {
    throw SetupError("HTTP address '" + escaped(address) + "' is invalid (" + why +
                     ") write it as HOST:PORT, e.g. 127.0.0.1:8080 (port 0: any free port)");
  };
  if (address.empty()) return fail("it is empty");
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return fail("no port");
  std::string host = address.substr(0, colon);
  const std::string port_text = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return fail("an IPv6 host must be in brackets");
  }
  if (host.empty()) return fail("no host");
  int port = -1;
  const auto* end = port_text.data() + port_text.size();
  const auto r = std::from_chars(port_text.data(), end, port);
  if (port_text.empty() || r.ec != std::errc() || r.ptr != end) {
    return fail("the port is not a number");
  }
  if (port < 0 || port > 65535) return fail("the port is over 65535");
  return {host, port};
}

std::string metrics_text(const std::vector<HttpSource>& sources) {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& s : sources) {
    if (!s.metrics) continue;
    if (s.refresh) {
      try {
        s.refresh();
      } catch (const std::exception& e) {
        log::warn("http: refreshing the metrics of {} failed: {}", s.name, e.what());
      }
    }
    auto f = s.metrics->Collect();
    families.insert(families.end(), std::make_move_iterator(f.begin()),
                    std::make_move_iterator(f.end()));
  }
  return prometheus::TextSerializer().Serialize(families);
}

struct HttpFront::Impl {
  HttpOptions options;
  HttpSources sources;
  httplib::Server server;
  std::thread thread;
  std::string host;
  int port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<bool> listen_done{false};
  std::atomic<std::size_t> streams{0};
  std::mutex stop_mutex;
  std::condition_variable stop_cv;

  std::vector<HttpSource> list() const {
    try {
      return sources ? sources() : std::vector<HttpSource>{};
    } catch (const std::exception& e) {
      log::warn("http: listing services failed: {}", e.what());
      return {};
    }
  }
  std::optional<HttpSource> find(const std::string& name) const {
    for (auto& s : list()) {
      if (s.name == name) return s;
    }
    return std::nullopt;
  }

  void routes();
};

void HttpFront::Impl::routes() {
  server.set_pre_routing_handler([](const httplib::Request&, httplib::Response& res) {
    if (!http_overloaded) return httplib::Server::HandlerResponse::Unhandled;
    send_json_error(res, 503, "the status server is busy; try again later");
    return httplib::Server::HandlerResponse::Handled;
  });
  auto page = [](const char* name) {
    return [name](const httplib::Request&, httplib::Response& res) {
      const auto* a = find_asset(name);
      res.set_content(std::string(a->body), std::string(content_type(name)));
    };
  };
  server.Get("/", page("index.html"));
  server.Get("/index.html", page("index.html"));
  server.Get(R"(/service/([A-Za-z0-9_.\-]+))",
             [this](const httplib::Request& req, httplib::Response& res) {
               if (!find(req.matches[1])) {
                 send_json_error(res, 404, "no service named " + std::string(req.matches[1]));
                 return;
               }
               const auto* a = find_asset("service.html");
               res.set_content(std::string(a->body), std::string(content_type("service.html")));
             });
  server.Get(R"(/static/([A-Za-z0-9_.\-]+))",
             [this](const httplib::Request& req, httplib::Response& res) {
               const std::string name = req.matches[1];
               if (name == "chart.js") {
                 std::ifstream in(options.chart_js, std::ios::binary);
                 if (!in) {
                   send_json_error(res, 404, "chart.js is not installed (libjs-chart.js)");
                   return;
                 }
                 std::ostringstream text;
                 text << in.rdbuf();
                 res.set_content(text.str(), "text/javascript; charset=utf-8");
                 return;
               }
               const auto* a = find_asset(name);
               if (!a || name.ends_with(".html")) {
                 send_json_error(res, 404, "no file named " + name);
                 return;
               }
               res.set_header("Cache-Control", "no-cache");
               res.set_content(std::string(a->body), std::string(content_type(name)));
             });
  server.Get("/api/services", [this](const httplib::Request&, httplib::Response& res) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& s : list()) j.push_back({{"name", s.name}, {"doc", s.doc}});
    res.set_content(j.dump(), "application/json");
  });
  server.Get(R"(/api/status/([A-Za-z0-9_.\-]+))",
             [this](const httplib::Request& req, httplib::Response& res) {
               auto s = find(req.matches[1]);
               if (!s) {
                 send_json_error(res, 404, "no service named " + std::string(req.matches[1]));
                 return;
               }
               res.set_content(snapshot_of(*s).dump(), "application/json");
             });
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(list()), "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Get(R"(/events/([A-Za-z0-9_.\-]+))", [this](const httplib::Request& req,
                                                     httplib::Response& res) {
    const std::string name = req.matches[1];
    if (!find(name)) {
      send_json_error(res, 404, "no service named " + name);
      return;
    }
    if (streams.fetch_add(1) >= options.max_event_streams) {
      streams.fetch_sub(1);
      send_json_error(res, 503,
                      "too many event streams open (" + std::to_string(options.max_event_streams) +
                          "); close a page or try again later");
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, name](std::size_t, httplib::DataSink& sink) {
          if (stopping) return false;
          auto s = find(name);
          // A service that has gone ends its stream; the page reconnects.
          if (!s) return false;
          const std::string event = "data: " + snapshot_of(*s).dump() + "\n\n";
          if (!sink.write(event.data(), event.size())) return false;
          std::unique_lock lock(stop_mutex);
          stop_cv.wait_for(lock, options.event_interval, [&] { return stopping.load(); });
          return !stopping.load();
        },
        [this](bool) { streams.fetch_sub(1); });
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) {
      res.set_content(nlohmann::json{{"error", "not found"}, {"status", res.status}}.dump(),
                      "application/json");
    }
  });
}

HttpFront::HttpFront(HttpOptions options, HttpSources sources) : impl_(std::make_unique<Impl>()) {
  options.validate();
  Impl& m = *impl_;
  m.options = std::move(options);
  m.sources = std::move(sources);
  const auto hp = parse_host_port(m.options.bind);
  m.host = hp.host;
  const std::size_t threads = m.options.threads;
  const std::size_t queued = m.options.max_queued_connections;
  m.server.new_task_queue = [threads, queued] { return new BoundedPool(threads, queued); };
  m.server.set_payload_max_length(m.options.max_request_bytes);
  m.server.set_read_timeout(m.options.read_timeout);
  m.server.set_write_timeout(m.options.write_timeout);
  m.server.set_keep_alive_timeout(2);
  // httplib's default also sets SO_REUSEPORT, which would let a second
  // server share a port in use without an error; SO_REUSEADDR alone still
  // allows a restart while old connections linger in TIME_WAIT.
  m.server.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  m.routes();
  if (hp.port == 0) {
    m.port = m.server.bind_to_any_port(hp.host);
  } else {
    m.port = m.server.bind_to_port(hp.host, hp.port) ? hp.port : -1;
  }
  if (m.port <= 0) {
    throw SetupError("cannot listen for HTTP on " + m.options.bind +
                     " (the address is in use or not local) choose another with --http");
  }
  m.thread = std::thread([&m] {
    if (!m.server.listen_after_bind() && !m.stopping) log::error("http: the listener stopped");
    m.listen_done = true;
  });
  // httplib's stop() does nothing before the accept loop runs, so the loop
  // must be running before anyone may call stop().
  while (!m.server.is_running() && !m.listen_done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  log::info("http: status pages on {}", url());
}

HttpFront::~HttpFront() {
  stop();
}

void HttpFront::stop() {
  Impl& m = *impl_;
  {
    std::lock_guard lock(m.stop_mutex);
    m.stopping = true;
  }
  m.stop_cv.notify_all();
  if (m.thread.joinable()) {
    m.server.stop();
    m.thread.join();
  }
}

int HttpFront::port() const noexcept {
  return impl_->port;
}

std::string HttpFront::url() const {
  const bool v6 = impl_->host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + impl_->host + "]" : impl_->host) + ":" +
         std::to_string(impl_->port) + "/";
}

}  // namespace acheron::net
