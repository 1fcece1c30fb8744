// acheron::chroma, the client side for Geant4 programs: the ChromaPhotonList
// interface, and Client against a real `photon serve` chroma front (hits in
// both framings, the same hits as the ChAR0N front, the error reply as a
// Failure) and against stand-in servers that lose a request or have no
// worker (Lazy Pirate retries on a fresh socket).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <thread>

#include "TestBytes.hh"
#include "acheron/chroma/Client.hh"
#include "acheron/net/Zmq.hh"
#include "acheron/photon/Client.hh"
#include "acheron/photon/Server.hh"

namespace acheron::chroma {
namespace {
using namespace std::chrono_literals;
namespace wc = wire::chroma;
namespace charon = wire::charon;
using test_support::str;

// Geant4's vector class has this shape (x(), y(), z()).
struct FakeThreeVector {
  double vx, vy, vz;
  double x() const { return vx; }
  double y() const { return vy; }
  double z() const { return vz; }
};

// n photons from the detector's centre in random directions, 420 nm, with
// polarisations perpendicular to them.
PhotonList burst(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g;
  PhotonList p;
  while (p.size() < n) {
    FakeThreeVector d{g(rng), g(rng), g(rng)};
    const double len = std::sqrt(d.vx * d.vx + d.vy * d.vy + d.vz * d.vz);
    if (len < 1e-3) continue;
    d = {d.vx / len, d.vy / len, d.vz / len};
    FakeThreeVector pol{d.vy, -d.vx, 0};
    const double pl = std::hypot(pol.vx, pol.vy);
    pol = pl < 1e-3 ? FakeThreeVector{1, 0, 0} : FakeThreeVector{pol.vx / pl, pol.vy / pl, 0};
    p.AddPhoton(FakeThreeVector{0, 0, 0}, d, pol, 0.5f, 420.f);
  }
  return p;
}

TEST(ChromaPhotonListInterface, AddClearFromAndGetArrays) {
  PhotonList p;
  p.AddPhoton(FakeThreeVector{1, 2, 3}, FakeThreeVector{0, 0, 1}, FakeThreeVector{1, 0, 0}, 4.f,
              500.f);
  const float pos[3] = {5, 6, 7}, dir[3] = {0, 1, 0}, pol[3] = {0, 0, 1};
  p.AddPhoton(pos, dir, pol, 8.f, 600.f, 17);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p.x, (std::vector<float>{1, 5}));
  EXPECT_EQ(p.pz, (std::vector<float>{1, 0}));
  EXPECT_EQ(p.pmtid, (std::vector<int>{-1, 17}));
  float out[11][2];
  int ids[2];
  p.GetArrays(out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7], out[8], out[9],
              out[10], ids);
  PhotonList q;
  q.FromArrays(out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7], out[8], out[9],
               out[10], ids, 2);
  EXPECT_TRUE(wc::bitwise_equal(p, q));
  q.FromArrays(out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7], out[8], out[9],
               out[10], nullptr, 2);  // appends, pmtid -1
  EXPECT_EQ(q.size(), 4u);
  EXPECT_EQ(q.pmtid[3], -1);
  EXPECT_EQ(q.t[2], 4.f);
  q.ClearAll();
  EXPECT_EQ(q.size(), 0u);
  for (const auto* v : q.floats()) EXPECT_TRUE(v->empty());
  EXPECT_TRUE(q.pmtid.empty());
}

class ChromaServeTest : public ::testing::Test {
 protected:
  std::shared_ptr<const optics::Detector> detector =
      std::make_shared<const optics::Detector>(optics::Detector::default_detector());
  std::unique_ptr<photon::Server> server;
  std::thread thread;

  void start(photon::ServerOptions o) {
    o.service.threads = 1;
    o.service.seed = 11;
    server = std::make_unique<photon::Server>(detector, o);
    thread = std::thread([this] { server->run(); });
  }
  void start_both() {
    photon::ServerOptions o;
    o.bind = "tcp://127.0.0.1:*";
    o.chroma_bind = {"tcp://127.0.0.1:*"};
    start(o);
  }
  ~ChromaServeTest() override {
    if (server) server->stop();
    if (thread.joinable()) thread.join();
  }
  Client client(wc::Framing framing = wc::Framing::buffer) {
    return Client(
        {.endpoint = server->chroma_endpoints().at(0), .timeout = 20s, .framing = framing});
  }
};

TEST_F(ChromaServeTest, DetectedPhotonsComeBackInBothFramings) {
  start_both();
  const PhotonList photons = burst(4000, 1);
  PhotonList first;
  for (auto framing : {wc::Framing::buffer, wc::Framing::message}) {
    auto c = client(framing);
    const PhotonList hits = c.simulate(photons, 3);
    ASSERT_GT(hits.size(), 20u);
    ASSERT_LT(hits.size(), photons.size());
    float max_dist = 0;
    for (std::size_t i = 0; i < hits.size(); ++i) {
      ASSERT_GE(hits.pmtid[i], 0);
      ASSERT_LT(std::size_t(hits.pmtid[i]), detector->geometry().channels().size());
      EXPECT_GT(hits.t[i], 0.5f) << "hit time is the input time plus the flight";
      EXPECT_EQ(hits.wavelength[i], 420.f);
      // The final position is on the hit PMT (a 127 mm photocathode aperture
      // around its placement), not its placement nor the photons' origin.
      const auto& ch = detector->geometry().channels()[std::size_t(hits.pmtid[i])].position;
      const float dist = std::hypot(hits.x[i] - ch.x, hits.y[i] - ch.y, hits.z[i] - ch.z);
      EXPECT_LT(dist, 300.f);
      EXPECT_GT(std::hypot(hits.x[i], hits.y[i], hits.z[i]), 1000.f);
      max_dist = std::max(max_dist, dist);
    }
    EXPECT_GT(max_dist, 1.f) << "positions are where the photons hit, not the channel's";
    // The same list and id give the same hits, whatever the framing.
    if (framing == wc::Framing::buffer) {
      first = hits;
    } else {
      EXPECT_TRUE(wc::bitwise_equal(first, hits));
    }
  }
  // Another event id keys other random streams.
  EXPECT_FALSE(wc::bitwise_equal(first, client().simulate(photons, 4)));
}

TEST_F(ChromaServeTest, SameHitsAsTheCharonFrontForTheSameEventId) {
  start_both();
  const PhotonList photons = burst(5000, 2);
  const PhotonList chroma_hits = client().simulate(photons, 77);
  photon::EventPhotons ev;
  ev.event_id = 77;
  const std::vector<float>* order[charon::kComponents] = {
      &photons.x,    &photons.y,    &photons.z,    &photons.px,         &photons.py, &photons.pz,
      &photons.polx, &photons.poly, &photons.polz, &photons.wavelength, &photons.t};
  for (int c = 0; c < charon::kComponents; ++c) ev.f32[c] = *order[c];
  ev.flags.assign(photons.size(), 0);
  photon::Client charon_client({.endpoint = server->endpoint(), .timeout = 20s});
  const charon::Hits hits = charon_client.simulate(ev);
  ASSERT_EQ(hits.size(), chroma_hits.size());
  ASSERT_GT(hits.size(), 0u);
  for (std::size_t i = 0; i < hits.size(); ++i) {
    EXPECT_EQ(std::int32_t(hits.channel[i]), chroma_hits.pmtid[i]);
    EXPECT_EQ(std::memcmp(&hits.time[i], &chroma_hits.t[i], 4), 0);
    EXPECT_EQ(std::memcmp(&hits.dir_x[i], &chroma_hits.px[i], 4), 0);
    EXPECT_EQ(std::memcmp(&hits.pol_z[i], &chroma_hits.polz[i], 4), 0);
  }
}

TEST_F(ChromaServeTest, ErrorRepliesBecomeFailuresWithTheServersStatus) {
  photon::ServerOptions o;
  o.bind = "";  // chroma only
  o.chroma_bind = {"tcp://127.0.0.1:*"};
  o.chroma.limits.max_photons = 100;
  start(o);
  EXPECT_TRUE(server->endpoint().empty());
  auto c = client(wc::Framing::message);
  try {
    c.simulate(burst(101, 3));
    FAIL() << "101 photons are over the limit";
  } catch (const Failure& e) {
    EXPECT_EQ(e.code(), StatusCode::resource_exhausted);
    EXPECT_NE(std::string(e.what()).find("limit of 100"), std::string::npos) << e.what();
  }
  // Bytes that are no list at all.
  const std::vector<std::byte> junk(40, std::byte{0x5a});
  auto reply = c.request(junk);
  auto e = wc::decode_error(reply);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->code, StatusCode::invalid_argument);
  // A list that cannot be written never leaves the client.
  PhotonList nan = burst(2, 4);
  nan.t[1] = std::nanf("");
  EXPECT_THROW(c.simulate(nan), Failure);
  // And the server goes on serving.
  EXPECT_EQ(c.simulate(PhotonList{}).size(), 0u);
  EXPECT_GT(c.simulate(burst(100, 5)).size(), 0u);
}

// A stand-in server on a ROUTER socket: `answer` decides, per request, the
// reply (nullopt: none).
class StandIn {
 public:
  using Answer = std::function<std::optional<Buffer>(int n, const Buffer& request)>;
  explicit StandIn(Answer answer) : answer_(std::move(answer)) {
    net::set_linger(socket_, 0ms);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { loop(); });
  }
  ~StandIn() {
    stop_ = true;
    thread_.join();
  }
  std::string endpoint;
  std::set<std::string> identities;  // of every requesting socket
  std::atomic<int> requests{0};

 private:
  void loop() {
    std::vector<Buffer> frames;
    while (!stop_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, 20ms);
      if (!net::recv_frames(socket_, frames, zmq::recv_flags::dontwait)) continue;
      identities.insert(str(frames[0]));
      const int n = ++requests;
      if (auto reply = answer_(n, frames.back())) {
        net::send_frames(socket_, {frames[0], Buffer{}, *reply});
      }
    }
  }
  zmq::context_t ctx_{1};
  zmq::socket_t socket_{ctx_, zmq::socket_type::router};
  Answer answer_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(ChromaClientRetries, AnUnansweredRequestIsSentAgainOnAFreshSocket) {
  PhotonList detected = burst(3, 6);
  StandIn server([&](int n, const Buffer&) -> std::optional<Buffer> {
    if (n == 1) return std::nullopt;  // the first request is lost
    return wc::encode(detected).value();
  });
  Client c({.endpoint = server.endpoint, .timeout = 300ms, .attempts = 3});
  EXPECT_TRUE(wc::bitwise_equal(c.simulate(burst(10, 7)), detected));
  EXPECT_EQ(server.requests, 2);
  EXPECT_EQ(server.identities.size(), 2u) << "the second attempt used a new socket";
}

TEST(ChromaClientRetries, UnavailableIsRetriedAfterAPause) {
  StandIn server([&](int n, const Buffer&) -> std::optional<Buffer> {
    if (n == 1) return wc::encode_error(StatusCode::unavailable, "no worker yet");
    return wc::encode(PhotonList{}).value();
  });
  Client c({.endpoint = server.endpoint, .timeout = 2s, .unavailable_wait = 50ms});
  EXPECT_EQ(c.simulate(burst(1, 8)).size(), 0u);
  EXPECT_EQ(server.requests, 2);
}

TEST(ChromaClientRetries, NoServerMeansUnavailableAfterEveryAttempt) {
  StandIn server([](int, const Buffer&) -> std::optional<Buffer> { return std::nullopt; });
  Client c({.endpoint = server.endpoint, .timeout = 300ms, .attempts = 3});
  const auto t0 = std::chrono::steady_clock::now();
  try {
    c.simulate(burst(1, 9));
    FAIL() << "nothing answered";
  } catch (const Failure& e) {
    EXPECT_EQ(e.code(), StatusCode::unavailable);
  }
  // Three attempts, each waiting its whole deadline.
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 900ms);
  // Each attempt is a fresh socket closed without lingering, so on a loaded
  // machine an attempt's request may be dropped before its connection is
  // up; never more than one request per attempt arrives.
  EXPECT_GE(server.requests, 1);
  EXPECT_LE(server.requests, 3);
  EXPECT_THROW(Client({.attempts = 0}), SetupError);
}

TEST(ChromaClientRetries, AnUnreadableReplyIsAnError) {
  StandIn server([](int, const Buffer&) -> std::optional<Buffer> {
    return Buffer::copy_of(std::string_view("SIM_COMPLETE"));
  });
  Client c({.endpoint = server.endpoint, .timeout = 2s});
  try {
    c.simulate(burst(1, 10));
    FAIL();
  } catch (const Failure& e) {
    EXPECT_EQ(e.code(), StatusCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("unreadable reply"), std::string::npos);
  }
}

}  // namespace
}  // namespace acheron::chroma
