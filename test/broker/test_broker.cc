// The broker over real ZeroMQ sockets on loopback, in one process: the
// Broker on a thread, fake workers speaking the original Python worker's
// protocol (DEALER: READY on connect, HEARTBEAT every second, replies
// [client_id, "", reply...]) and RAT-PAC-like clients (a new REQ socket per
// attempt, 2500 ms timeout, 3 attempts).
#include "acheron/broker/Broker.hh"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include "../charon/RouterTestUtil.hh"
#include "TestWait.hh"
#include "acheron/net/Zmq.hh"

namespace acheron::broker {
namespace {
using namespace std::chrono_literals;
using namespace charon::testutil;
using std::chrono::milliseconds;

// RAT-PAC's transport constants (ratdb/CHROMA.ratdb, §2).
constexpr milliseconds kClientTimeout{2500};
constexpr int kClientAttempts = 3;

using test_support::eventually;

// Runs a broker on its own thread; stops and joins on destruction.
class BrokerThread {
 public:
  explicit BrokerThread(BrokerOptions o)
      : broker_(std::move(o)), thread_([this] { broker_.run(); }) {}
  ~BrokerThread() {
    broker_.stop();
    thread_.join();
  }
  const Broker::Endpoints& endpoints() const { return broker_.endpoints(); }

 private:
  Broker broker_;
  std::thread thread_;
};

BrokerOptions loopback_options() {
  BrokerOptions o;
  o.frontend = "tcp://127.0.0.1:*";
  o.backend = "tcp://127.0.0.1:*";
  return o;
}

// One request on a fresh REQ socket; nullopt when nothing came in time.
std::optional<std::vector<Buffer>> request_once(
    zmq::context_t& ctx, const std::string& endpoint, const std::vector<Buffer>& body,
    milliseconds timeout, const std::function<void(zmq::socket_t&)>& setup = {}) {
  zmq::socket_t s(ctx, zmq::socket_type::req);
  net::set_linger(s, 0ms);
  if (setup) setup(s);
  s.connect(endpoint);
  net::send_frames(s, body);
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, timeout);
  if (!(item.revents & ZMQ_POLLIN)) return std::nullopt;
  std::vector<Buffer> reply;
  net::recv_frames(s, reply);
  return reply;
}

// RAT-PAC's do_send_and_recv for PHOTONDATA: resend on a fresh socket after
// each timeout or invalid reply, up to 3 attempts.
struct RatResult {
  std::vector<Buffer> reply;  // the accepted reply, or empty
  int attempts = 0;
};
RatResult send_like_rat(zmq::context_t& ctx, const std::string& endpoint, std::uint32_t event_id,
                        const std::vector<Buffer>& body) {
  RatResult r;
  for (r.attempts = 1; r.attempts <= kClientAttempts; ++r.attempts) {
    auto reply = request_once(ctx, endpoint, body, kClientTimeout);
    if (reply && reply->size() >= 12 && str(reply->at(0)) == "SIM_COMPLETE" &&
        u32(reply->at(1)) == event_id) {
      r.reply = std::move(*reply);
      return r;
    }
  }
  r.attempts = kClientAttempts;
  return r;
}

nlohmann::json stats(zmq::context_t& ctx, const std::string& endpoint) {
  auto reply = request_once(ctx, endpoint, {text("STATS")}, 2000ms);
  if (!reply || reply->size() != 2) return {};
  return nlohmann::json::parse(str(reply->at(1)));
}

// A worker as ChAR0N's worker.py behaves on the wire, with faults on demand.
struct FakeWorkerOptions {
  milliseconds work{0};  // simulated event time
  // Ours heartbeats while simulating; the original does not (§7, §8.3).
  bool heartbeat_while_busy = true;
  enum class Fault { none, hang, crash } fault = Fault::none;
  wire::charon::DetectorInfo detector = charon::testutil::detector();
  std::optional<net::CurveKeys> curve;
  std::string server_key;
};

class FakeWorker {
 public:
  FakeWorker(zmq::context_t& ctx, std::string endpoint, FakeWorkerOptions o = {})
      : ctx_(ctx), endpoint_(std::move(endpoint)), o_(std::move(o)), thread_([this] { run(); }) {}
  ~FakeWorker() {
    stop_ = true;
    thread_.join();
  }
  int jobs() const { return jobs_; }

 private:
  void run() {
    zmq::socket_t s(ctx_, zmq::socket_type::dealer);
    net::set_linger(s, 0ms);
    if (o_.curve) net::make_curve_client(s, *o_.curve, o_.server_key);
    s.connect(endpoint_);
    const std::uint8_t ready = wire::charon::kReady, beat = wire::charon::kHeartbeat;
    s.send(zmq::buffer(&ready, 1));
    auto next_beat = Clock::now() + 1s;
    TimePoint silent_at = TimePoint::max();
    struct Pending {
      std::vector<Buffer> reply;
      TimePoint due;
    };
    std::deque<Pending> pending;
    std::vector<Buffer> frames;
    while (!stop_) {
      zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, 10ms);
      const auto now = Clock::now();
      const bool silent = now >= silent_at;
      while (net::recv_frames(s, frames, zmq::recv_flags::dontwait)) {
        if (silent || frames.size() == 1) continue;  // hung, or a HEARTBEAT
        if (frames.size() < 3) continue;
        // [client_id, "", header, ...] -> [client_id, "", reply...]
        std::vector<Buffer> reply = {frames[0], Buffer{}};
        const std::span<const Buffer> body(frames.data() + 2, frames.size() - 2);
        const std::string header = str(body[0]);
        std::vector<Buffer> answer;
        if (header == wire::charon::kDetectorInfo) {
          answer = wire::charon::encode_detector_info(o_.detector);
        } else if (header == wire::charon::kPhotonData) {
          ++jobs_;
          if (o_.fault == FakeWorkerOptions::Fault::crash) return;  // socket closes
          if (o_.fault == FakeWorkerOptions::Fault::hang) {
            // One more heartbeat well into the job (so the broker knows it
            // heartbeats while busy), then nothing at all.
            next_beat = now + 600ms;
            silent_at = now + 700ms;
            continue;
          }
          answer = sim_complete_for(body);
        } else {
          answer = {text(wire::charon::kUnknownRequest)};
        }
        reply.insert(reply.end(), answer.begin(), answer.end());
        const bool delayed = header == wire::charon::kPhotonData && o_.work > 0ms;
        if (delayed) {
          pending.push_back({std::move(reply), now + o_.work});
        } else {
          net::send_frames(s, reply);
        }
      }
      if (Clock::now() >= silent_at) continue;
      while (!pending.empty() && Clock::now() >= pending.front().due) {
        net::send_frames(s, pending.front().reply);
        pending.pop_front();
      }
      if (Clock::now() >= next_beat && (o_.heartbeat_while_busy || pending.empty())) {
        s.send(zmq::buffer(&beat, 1), zmq::send_flags::dontwait);
        next_beat = Clock::now() + 1s;
      }
    }
  }

  zmq::context_t& ctx_;
  std::string endpoint_;
  FakeWorkerOptions o_;
  std::atomic<bool> stop_{false};
  std::atomic<int> jobs_{0};
  std::thread thread_;
};

class BrokerTest : public ::testing::Test {
 protected:
  zmq::context_t ctx{1};  // declared first: outlives every socket below

  // Waits until the broker reports `n` idle workers.
  bool idle_workers(const std::string& frontend, int n) {
    return eventually(
        [&] {
          auto j = stats(ctx, frontend);
          return !j.is_null() && j["workers_idle"] == n;
        },
        5000ms);
  }
};

TEST_F(BrokerTest, RequestFlowsFromClientThroughWorkerBack) {
  BrokerThread b(loopback_options());
  const auto& ep = b.endpoints();
  EXPECT_NE(ep.frontend.find("tcp://127.0.0.1:"), std::string::npos);
  EXPECT_EQ(ep.frontend.find('*'), std::string::npos) << "the real port is reported";
  FakeWorker w(ctx, ep.backend);
  ASSERT_TRUE(idle_workers(ep.frontend, 1));

  auto ping = request_once(ctx, ep.frontend, {text("PING")}, kClientTimeout);
  ASSERT_TRUE(ping);
  EXPECT_EQ(str(ping->at(0)), "ACK");
  auto run =
      request_once(ctx, ep.frontend, wire::charon::encode_run_begin("x.root"), kClientTimeout);
  ASSERT_TRUE(run);
  EXPECT_EQ(str(run->at(0)), "ACK");
  auto info = request_once(ctx, ep.frontend, {text("DETECTOR_INFO")}, kClientTimeout);
  ASSERT_TRUE(info);
  auto det = wire::charon::decode_detector_info(*info);
  ASSERT_TRUE(det.ok());
  EXPECT_EQ(*det, detector());

  auto r = send_like_rat(ctx, ep.frontend, 42, photon_request(42, 6));
  ASSERT_FALSE(r.reply.empty());
  EXPECT_EQ(r.attempts, 1);
  auto hits = wire::charon::decode_sim_complete(r.reply);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 6u);
  EXPECT_EQ(hits->channel[0], 42u);

  auto j = stats(ctx, ep.frontend);
  EXPECT_EQ(j["completed"], 1);
  EXPECT_EQ(j["dispatched"], 1);
  EXPECT_EQ(j["workers_idle"], 1);
  EXPECT_EQ(j["frontend"], ep.frontend);
  EXPECT_EQ(w.jobs(), 1);
}

TEST_F(BrokerTest, HungWorkersRequestIsCompletedByAnother) {
  BrokerThread b(loopback_options());
  const auto& ep = b.endpoints();
  FakeWorkerOptions hang;
  hang.fault = FakeWorkerOptions::Fault::hang;
  FakeWorker bad(ctx, ep.backend, hang);
  ASSERT_TRUE(idle_workers(ep.frontend, 1));
  FakeWorker good(ctx, ep.backend);
  ASSERT_TRUE(idle_workers(ep.frontend, 2));

  const auto t0 = Clock::now();
  auto r = send_like_rat(ctx, ep.frontend, 7, photon_request(7));
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_FALSE(r.reply.empty()) << "lost after " << r.attempts << " attempts";
  EXPECT_EQ(bad.jobs(), 1) << "the least recently used worker got it first";
  EXPECT_EQ(good.jobs(), 1) << "simulated once more, not once per resend";
  // Detection: the hung worker's last heartbeat + 3 s; the client's resend
  // (after 2.5 s) is merged with the running job, so the reply reaches it.
  EXPECT_GT(seconds, 3.0);
  EXPECT_LT(seconds, 5.5);
  std::printf("[ measure  ] hung worker: reply after %.2f s, %d attempt(s)\n", seconds, r.attempts);
  auto j = stats(ctx, ep.frontend);
  EXPECT_EQ(j["retried"], 1);
  EXPECT_EQ(j["workers_lost"], 1);
  EXPECT_EQ(j["completed"], 1);
  EXPECT_GE(j["duplicates"], 1) << "the resend from a new REQ socket was merged";
}

TEST_F(BrokerTest, CrashedWorkersRequestIsRedispatchedAtOnce) {
  BrokerThread b(loopback_options());
  const auto& ep = b.endpoints();
  FakeWorkerOptions crash;
  crash.fault = FakeWorkerOptions::Fault::crash;
  FakeWorker bad(ctx, ep.backend, crash);
  ASSERT_TRUE(idle_workers(ep.frontend, 1));
  FakeWorker good(ctx, ep.backend);
  ASSERT_TRUE(idle_workers(ep.frontend, 2));

  const auto t0 = Clock::now();
  auto r = send_like_rat(ctx, ep.frontend, 8, photon_request(8));
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_FALSE(r.reply.empty());
  EXPECT_EQ(r.attempts, 1);
  // The closed connection shows at the next heartbeat (at most 1 s).
  EXPECT_LT(seconds, 1.6);
  std::printf("[ measure  ] crashed worker: reply after %.2f s\n", seconds);
  EXPECT_EQ(stats(ctx, ep.frontend)["retried"], 1);
}

TEST_F(BrokerTest, NoWorkersAfterTheGrace) {
  auto o = loopback_options();
  o.router.no_worker_grace = 500ms;
  const auto started = Clock::now();
  BrokerThread b(o);
  const auto& ep = b.endpoints();
  // Within the grace the request waits; when it ends the client is told.
  auto first = request_once(ctx, ep.frontend, photon_request(1), kClientTimeout);
  const auto waited = Clock::now() - started;
  ASSERT_TRUE(first);
  EXPECT_EQ(str(first->at(0)), "NO_WORKERS");
  EXPECT_GE(waited, 450ms);
  // After it, at once.
  const auto t1 = Clock::now();
  auto second = request_once(ctx, ep.frontend, photon_request(2), kClientTimeout);
  ASSERT_TRUE(second);
  EXPECT_EQ(str(second->at(0)), "NO_WORKERS");
  EXPECT_LT(Clock::now() - t1, 300ms);
  // PING never needs a worker.
  auto ping = request_once(ctx, ep.frontend, {text("PING")}, kClientTimeout);
  ASSERT_TRUE(ping);
  EXPECT_EQ(str(ping->at(0)), "ACK");
}

TEST_F(BrokerTest, ManyConcurrentClientsLoseNothing) {
  BrokerThread b(loopback_options());
  const auto& ep = b.endpoints();
  std::vector<std::unique_ptr<FakeWorker>> workers;
  for (int i = 0; i < 3; ++i) {
    FakeWorkerOptions o;
    o.work = 15ms;
    o.heartbeat_while_busy = i != 0;  // one original-style worker in the pool
    workers.push_back(std::make_unique<FakeWorker>(ctx, ep.backend, o));
  }
  ASSERT_TRUE(idle_workers(ep.frontend, 3));

  constexpr int kClients = 12, kEvents = 8;
  std::atomic<int> good{0}, bad{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int e = 0; e < kEvents; ++e) {
        const auto id = static_cast<std::uint32_t>(1000 * c + e);
        auto r = send_like_rat(ctx, ep.frontend, id, photon_request(id, 3, float(c)));
        auto hits = wire::charon::decode_sim_complete(r.reply);
        const bool ok = !r.reply.empty() && r.attempts == 1 && hits.ok() && hits->size() == 3 &&
                        hits->channel[0] == id;
        (ok ? good : bad)++;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(good, kClients * kEvents);
  EXPECT_EQ(bad, 0);
  auto j = stats(ctx, ep.frontend);
  EXPECT_EQ(j["completed"], kClients * kEvents);
  EXPECT_EQ(j["no_workers"], 0);
  EXPECT_EQ(j["duplicates"], 0);
  EXPECT_EQ(j["queue_depth"], 0);
  int total = 0;
  for (auto& w : workers) {
    EXPECT_GT(w->jobs(), 0) << "every worker took a share";
    total += w->jobs();
  }
  EXPECT_EQ(total, kClients * kEvents);
}

TEST_F(BrokerTest, ReplyForAVanishedClientIsDropped) {
  BrokerThread b(loopback_options());
  const auto& ep = b.endpoints();
  FakeWorkerOptions slow;
  slow.work = 200ms;
  FakeWorker w(ctx, ep.backend, slow);
  ASSERT_TRUE(idle_workers(ep.frontend, 1));
  // The client gives up (closes its socket) before the reply.
  EXPECT_FALSE(request_once(ctx, ep.frontend, photon_request(3), 50ms));
  ASSERT_TRUE(eventually([&] { return stats(ctx, ep.frontend)["completed"] == 1; }, 3000ms));
  auto ping = request_once(ctx, ep.frontend, {text("PING")}, kClientTimeout);
  ASSERT_TRUE(ping);
  EXPECT_EQ(str(ping->at(0)), "ACK");
}

TEST_F(BrokerTest, CurveWithAllowedKeysOnBothSockets) {
  const auto server = net::generate_curve_keys();
  const auto client = net::generate_curve_keys();
  const auto worker = net::generate_curve_keys();
  const auto stranger = net::generate_curve_keys();
  auto o = loopback_options();
  o.frontend_curve = server;
  o.backend_curve = server;
  o.curve_allowed = {client.public_key, worker.public_key};
  BrokerThread b(o);
  const auto& ep = b.endpoints();
  FakeWorkerOptions wo;
  wo.curve = worker;
  wo.server_key = server.public_key;
  FakeWorker w(ctx, ep.backend, wo);
  auto as = [&](const net::CurveKeys& keys) {
    return
        [keys, pub = server.public_key](zmq::socket_t& s) { net::make_curve_client(s, keys, pub); };
  };
  ASSERT_TRUE(eventually(
      [&] {
        auto r = request_once(ctx, ep.frontend, {text("STATS")}, 1000ms, as(client));
        return r && r->size() == 2 && nlohmann::json::parse(str(r->at(1)))["workers_idle"] == 1;
      },
      5000ms));
  auto reply = request_once(ctx, ep.frontend, photon_request(9), kClientTimeout, as(client));
  ASSERT_TRUE(reply);
  EXPECT_EQ(str(reply->at(0)), "SIM_COMPLETE");
  EXPECT_FALSE(request_once(ctx, ep.frontend, {text("PING")}, 500ms, as(stranger)));
  EXPECT_FALSE(request_once(ctx, ep.frontend, {text("PING")}, 500ms)) << "plain TCP refused";
}

TEST_F(BrokerTest, BadOptionsAreSetupErrors) {
  auto o = loopback_options();
  o.frontend = "nonsense";
  EXPECT_THROW(Broker{o}, SetupError);
  o = loopback_options();
  o.frontend = o.backend = "tcp://127.0.0.1:5999";
  EXPECT_THROW(Broker{o}, SetupError) << "one port for both sockets";
  o = loopback_options();
  o.tick = 0ms;
  EXPECT_THROW(Broker{o}, SetupError);
  o = loopback_options();
  o.curve_allowed = {std::string(40, 'a')};
  EXPECT_THROW(Broker{o}, SetupError) << "allowed keys without CURVE";
  // A port already in use.
  Broker first(loopback_options());
  o = loopback_options();
  o.frontend = first.endpoints().frontend;
  EXPECT_THROW(Broker{o}, SetupError);
}

}  // namespace
}  // namespace acheron::broker
