// `acheron broker`: the load-balancing ChAR0N broker (charon-protocol.md §1,
// §8). A thin ZeroMQ adapter around CharonRouter: a frontend ROUTER for
// clients, a backend ROUTER for workers, one poll loop that feeds the router
// every message and a timer tick, and sends what it returns.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "acheron/broker/Monitor.hh"
#include "acheron/charon/CharonRouter.hh"
#include "acheron/charon/ChromaFront.hh"
#include "acheron/net/Zmq.hh"

namespace acheron::broker {

struct BrokerOptions {
  // Both bind all interfaces by default: workers run on other hosts (§8.6).
  // "tcp://127.0.0.1:*" binds an ephemeral port (see Broker::endpoints()).
  std::string frontend = "tcp://*:5555";
  std::string backend = "tcp://*:6667";
  // The chroma-server front (docs/chroma.md): a ROUTER bound to each of
  // these endpoints for chroma-server clients (REQ, one ChromaPhotonList per
  // request; chroma-server's own default is tcp://*:5024). Their lists
  // become jobs for the same workers and queue. Empty: no chroma front.
  // Synchronous mode only (a chroma client waits for its hits).
  std::vector<std::string> chroma_bind;
  charon::ChromaOptions chroma;
  charon::RouterOptions router;
  // CURVE server keys per socket; none: plain TCP. RAT-PAC speaks plain TCP
  // only, so a frontend for RAT-PAC stays plain.
  std::optional<net::CurveKeys> frontend_curve;
  std::optional<net::CurveKeys> backend_curve;
  // Z85 public keys of the clients and workers allowed on the CURVE sockets
  // (checked through ZAP). Empty: any peer that knows the server's public key.
  std::vector<std::string> curve_allowed;
  // Resolution of the router's timers (liveness, ttl, grace). Heartbeats are
  // sent on time regardless.
  std::chrono::milliseconds tick{100};
  // Largest frame accepted on either socket (net::set_max_message_size).
  std::int64_t max_message_size = net::kDefaultMaxMessageSize;

  // Throws SetupError naming the first invalid field.
  void validate() const;
};

class Broker final {
 public:
  // Validates the options and binds both sockets; throws SetupError.
  explicit Broker(BrokerOptions options);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  struct Endpoints {
    std::string frontend;  // as bound, with the real port
    std::string backend;
    std::vector<std::string> chroma;  // the chroma front's endpoints, if any
  };
  const Endpoints& endpoints() const noexcept { return endpoints_; }

  // Serves until stop(). Call from one thread.
  void run();
  // Thread-safe and async-signal-safe: run() returns soon after.
  void stop() noexcept;
  // Feeds the HTTP status front's monitor from the poll loop (about every
  // 250 ms). Call before run().
  void set_monitor(std::shared_ptr<BrokerMonitor> monitor);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Endpoints endpoints_;
};

}  // namespace acheron::broker
