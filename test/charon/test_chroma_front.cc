// The broker's chroma-server front without sockets, on a fake clock: lists
// become router jobs for the same workers and queue as ChAR0N requests, the
// workers' hits come back as lists in the client's framing, and everything
// that cannot be served gets the error reply at once.
#include "acheron/charon/ChromaFront.hh"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "RouterTestUtil.hh"
#include "acheron/charon/CharonRouter.hh"

namespace acheron::charon {
namespace {
using namespace std::chrono_literals;
using namespace testutil;
namespace chroma = wire::chroma;

constexpr std::string_view kPeer = "10.0.0.9";

std::span<const std::byte> view(const Buffer& b) {
  return {b.data(), b.size()};
}

// n photons whose values depend on `salt`; times are the photon index.
chroma::PhotonList list(std::size_t n, float salt = 0) {
  chroma::PhotonList p;
  p.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    p.x[i] = salt + float(i);
    p.px[i] = 1;
    p.polz[i] = 1;
    p.t[i] = float(i);
    p.wavelength[i] = 400 + salt;
    p.pmtid[i] = -1;
  }
  return p;
}

Buffer bytes_of(const chroma::PhotonList& p, chroma::Framing framing = chroma::Framing::buffer,
                std::uint32_t unique_id = 0) {
  chroma::Header h;
  h.framing = framing;
  h.unique_id = unique_id;
  return encode(p, h).value();
}

class ChromaFrontTest : public ::testing::Test {
 protected:
  TimePoint now = TimePoint{} + 1000h;
  RouterOptions opts;
  ChromaOptions chroma_opts;
  std::unique_ptr<CharonRouter> router;
  std::unique_ptr<ChromaFront> front;
  // What went out on each socket in the most recent call, as the broker's
  // adapter (Broker.cc) sorts it.
  std::vector<std::vector<Buffer>> chroma_out;
  std::vector<Outgoing> charon_out;
  std::vector<Outgoing> backend_out;

  void start() {
    router = std::make_unique<CharonRouter>(opts, now);
    front = std::make_unique<ChromaFront>(chroma_opts);
  }

  void sort(Outbox out) {
    for (auto& o : out) {
      if (o.socket == Socket::backend) {
        backend_out.push_back(std::move(o));
      } else if (ChromaFront::is_chroma_route(o.frames)) {
        auto reply = front->on_router_reply(o.frames, router->detector());
        if (!reply.empty()) chroma_out.push_back(std::move(reply));
      } else {
        charon_out.push_back(std::move(o));
      }
    }
  }
  void clear() {
    chroma_out.clear();
    charon_out.clear();
    backend_out.clear();
  }

  // A chroma socket's message, handled as Broker::Impl::on_chroma_message.
  void chroma_message(std::vector<Buffer> frames) {
    clear();
    auto action = front->on_message(std::move(frames));
    if (!action.refused.empty()) router->count_rejected();
    if (!action.reply.empty()) chroma_out.push_back(std::move(action.reply));
    if (action.job) {
      auto& j = *action.job;
      sort(
          router->on_photon_job(std::move(j.route), std::move(j.body), j.event_id, j.photons, now));
    }
  }
  // A REQ client: [id, "", bytes].
  void req(std::string_view id, Buffer bytes) {
    chroma_message({text(id), Buffer{}, std::move(bytes)});
  }
  void backend(std::vector<Buffer> frames) {
    clear();
    sort(router->on_backend_message(std::move(frames), now));
  }
  void tick() {
    clear();
    sort(router->on_tick(now));
  }

  // READY, then the answer to the router's DETECTOR_INFO probe.
  void add_worker(std::string_view id, std::size_t channels = 40) {
    const std::uint8_t ready = wire::charon::kReady;
    backend({text(id), Buffer::copy_of(&ready, 1)});
    ASSERT_EQ(backend_out.size(), 1u);
    std::vector<Buffer> frames = {text(id), backend_out[0].frames[1], Buffer{}};
    for (auto& f : wire::charon::encode_detector_info(detector(channels))) frames.push_back(f);
    backend(std::move(frames));
  }

  // The worker's SIM_COMPLETE for a dispatched job (hits as sim_complete_for).
  void complete(const Outgoing& job) {
    const std::span<const Buffer> body(job.frames.data() + 3, job.frames.size() - 3);
    std::vector<Buffer> frames = {job.frames[0], job.frames[1], Buffer{}};
    for (auto& f : sim_complete_for(body)) frames.push_back(f);
    backend(std::move(frames));
  }

  // The one chroma reply of the last call, to `id`: its bytes.
  Buffer reply_to(std::string_view id) {
    EXPECT_EQ(chroma_out.size(), 1u);
    if (chroma_out.size() != 1) return {};
    const auto& f = chroma_out[0];
    EXPECT_EQ(f.size(), 3u);
    EXPECT_EQ(str(f[0]), id);
    EXPECT_TRUE(f[1].empty());
    return f.back();
  }
  static chroma::ErrorReply error_of(const Buffer& b) {
    auto e = chroma::decode_error(view(b));
    EXPECT_TRUE(e.ok()) << "not an error reply";
    return e.ok() ? *e : chroma::ErrorReply{};
  }
};

TEST_F(ChromaFrontTest, ListBecomesAJobAndTheHitsComeBackAsAListInTheClientsFraming) {
  start();
  add_worker("w1");
  for (auto framing : {chroma::Framing::buffer, chroma::Framing::message}) {
    req("c1", bytes_of(list(4, 0.5f), framing, /*unique_id=*/9));
    ASSERT_EQ(backend_out.size(), 1u);
    const auto job = backend_out[0];
    // [worker, slot, "", PHOTONDATA, meta, 11 arrays, flags]
    ASSERT_EQ(job.frames.size(), 17u);
    EXPECT_EQ(str(job.frames[3]), wire::charon::kPhotonData);
    EXPECT_EQ(u32(job.frames[4]), 9u) << "the event id is the list's fUniqueID";
    complete(job);
    const Buffer reply = reply_to("c1");
    auto d = chroma::decode(view(reply));
    ASSERT_TRUE(d.ok()) << d.error().message;
    EXPECT_EQ(d->header.framing, framing);
    EXPECT_EQ(d->header.unique_id, 9u);
    // One hit per photon on channel 9 + i (the fake worker's rule), at the
    // channel's position (detector(): 100 mm apart on x).
    ASSERT_EQ(d->photons.size(), 4u);
    for (std::size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(d->photons.pmtid[i], std::int32_t(9 + i));
      EXPECT_EQ(d->photons.x[i], 100.0f * float(9 + i));
      EXPECT_EQ(d->photons.t[i], float(i));
      EXPECT_EQ(d->photons.wavelength[i], 400.5f);
    }
  }
  const auto st = router->stats();
  EXPECT_EQ(st.requests, 2u);
  EXPECT_EQ(st.photon_data, 2u);
  EXPECT_EQ(st.completed, 2u);
  EXPECT_EQ(front->stats().replies, 2u);
}

TEST_F(ChromaFrontTest, EmptyListGetsAnEmptyList) {
  start();
  add_worker("w1");
  req("c1", bytes_of(list(0)));
  ASSERT_EQ(backend_out.size(), 1u);
  complete(backend_out[0]);
  auto d = chroma::decode(view(reply_to("c1")));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->photons.size(), 0u);
}

TEST_F(ChromaFrontTest, IdenticalRequestsAreNeverMergedNorCached) {
  start();
  add_worker("w1");
  // Two clients on one host send the same list: two jobs, two replies.
  req("c1", bytes_of(list(3)));
  ASSERT_EQ(backend_out.size(), 1u);
  const auto first = backend_out[0];
  req("c2", bytes_of(list(3)));
  EXPECT_TRUE(backend_out.empty()) << "prefetch 1: the second waits in the queue";
  EXPECT_EQ(router->stats().queue_depth, 1u);
  complete(first);
  reply_to("c1");
  ASSERT_EQ(backend_out.size(), 1u) << "the queued one goes out next";
  complete(backend_out[0]);
  reply_to("c2");
  // And a third, later, is simulated again rather than answered from a cache.
  req("c3", bytes_of(list(3)));
  EXPECT_EQ(backend_out.size(), 1u);
  EXPECT_EQ(router->stats().duplicates, 0u);
  EXPECT_EQ(router->stats_json(now)["dedupe_cached"], 0);
}

TEST_F(ChromaFrontTest, DealerClientsAreAnsweredWithoutDelimiter) {
  start();
  add_worker("w1");
  chroma_message({text("d1"), bytes_of(list(1))});
  ASSERT_EQ(backend_out.size(), 1u);
  complete(backend_out[0]);
  ASSERT_EQ(chroma_out.size(), 1u);
  ASSERT_EQ(chroma_out[0].size(), 2u);
  EXPECT_EQ(str(chroma_out[0][0]), "d1");
  EXPECT_TRUE(chroma::decode(view(chroma_out[0][1])).ok());
}

TEST_F(ChromaFrontTest, WhatCannotBeServedGetsTheErrorReplyAtOnce) {
  chroma_opts.limits.max_photons = 5;
  start();
  add_worker("w1");
  struct Case {
    Buffer bytes;
    StatusCode code;
    std::string_view text;
    chroma::Framing framing;
  };
  const Buffer good = bytes_of(list(2));
  const Buffer good_message = bytes_of(list(2), chroma::Framing::message);
  Buffer nan = Buffer::copy_of(good.data(), good.size());
  // x[0] follows the object header (41 bytes) and the vector header (10).
  const float q = std::numeric_limits<float>::quiet_NaN();
  std::uint32_t bits;
  std::memcpy(&bits, &q, 4);
  bits = __builtin_bswap32(bits);
  std::memcpy(nan.mutable_data() + 51, &bits, 4);
  std::vector<Case> cases;
  cases.push_back({Buffer{}, StatusCode::invalid_argument, "empty", chroma::Framing::buffer});
  cases.push_back(
      {text("not a list at all"), StatusCode::invalid_argument, "", chroma::Framing::buffer});
  cases.push_back({good.slice(0, good.size() - 7), StatusCode::invalid_argument, "truncated",
                   chroma::Framing::buffer});
  cases.push_back({good_message.slice(0, good_message.size() - 1), StatusCode::invalid_argument,
                   "length word", chroma::Framing::message});
  cases.push_back({chroma::encode_error(StatusCode::internal, "x"), StatusCode::invalid_argument,
                   "wrong class 'TObjString'", chroma::Framing::buffer});
  cases.push_back({nan, StatusCode::invalid_argument, "x[0] is nan", chroma::Framing::buffer});
  cases.push_back(
      {bytes_of(list(6)), StatusCode::resource_exhausted, "limit of 5", chroma::Framing::buffer});
  cases.push_back({bytes_of(list(6), chroma::Framing::message), StatusCode::resource_exhausted,
                   "limit of 5", chroma::Framing::message});
  std::uint64_t refused = 0;
  for (auto& c : cases) {
    req("bad", std::move(c.bytes));
    EXPECT_TRUE(backend_out.empty()) << "nothing reaches a worker";
    const Buffer reply = reply_to("bad");
    EXPECT_EQ(chroma::detect_framing(view(reply)), c.framing) << c.text;
    const auto e = error_of(reply);
    EXPECT_EQ(e.code, c.code) << e.message;
    EXPECT_NE(e.message.find(c.text), std::string::npos) << e.message;
    EXPECT_EQ(front->stats().refused, ++refused);
  }
  // Two frames where one list belongs.
  chroma_message({text("two"), Buffer{}, bytes_of(list(1)), bytes_of(list(1))});
  EXPECT_EQ(error_of(reply_to("two")).code, StatusCode::invalid_argument);
  // No envelope: nothing can be answered.
  chroma_message({bytes_of(list(1))});
  EXPECT_TRUE(chroma_out.empty());
  EXPECT_EQ(front->stats().dropped, 1u);
  // The router counted each refusal as a rejected request; a good list is
  // still served.
  EXPECT_EQ(router->stats().rejected, refused + 1);
  req("c1", bytes_of(list(2)));
  ASSERT_EQ(backend_out.size(), 1u);
  complete(backend_out[0]);
  EXPECT_TRUE(chroma::decode(view(reply_to("c1"))).ok());
}

TEST_F(ChromaFrontTest, NoWorkersBecomesUnavailable) {
  opts.no_worker_grace = 1s;
  start();
  now += 2s;
  tick();
  req("c1", bytes_of(list(2), chroma::Framing::message));
  const auto e = error_of(reply_to("c1"));
  EXPECT_EQ(e.code, StatusCode::unavailable);
  EXPECT_EQ(router->stats().no_workers, 1u);
}

TEST_F(ChromaFrontTest, QueuedRequestsGetUnavailableWhenTheGraceRunsOut) {
  opts.no_worker_grace = 1s;
  start();
  req("c1", bytes_of(list(2)));
  EXPECT_TRUE(chroma_out.empty()) << "queued while workers may still come";
  now += 2s;
  tick();
  EXPECT_EQ(error_of(reply_to("c1")).code, StatusCode::unavailable);
}

TEST_F(ChromaFrontTest, SimFailedBecomesAborted) {
  start();
  add_worker("w1");
  req("c1", bytes_of(list(2)));
  ASSERT_EQ(backend_out.size(), 1u);
  const auto job = backend_out[0];
  std::vector<Buffer> frames = {job.frames[0], job.frames[1], Buffer{}};
  for (auto& f : wire::charon::encode_sim_failed(0)) frames.push_back(f);
  backend(std::move(frames));
  EXPECT_EQ(error_of(reply_to("c1")).code, StatusCode::aborted);
  EXPECT_EQ(front->stats().failed, 1u);
}

TEST_F(ChromaFrontTest, HitsOnUnknownChannelsBecomeAnInternalError) {
  start();
  add_worker("w1", /*channels=*/2);
  req("c1", bytes_of(list(3)));  // the fake worker hits channels 0, 1, 2
  ASSERT_EQ(backend_out.size(), 1u);
  complete(backend_out[0]);
  const auto e = error_of(reply_to("c1"));
  EXPECT_EQ(e.code, StatusCode::internal);
  EXPECT_NE(e.message.find("channel 2"), std::string::npos);
}

TEST_F(ChromaFrontTest, OnlyItsOwnRoutesAreRecognised) {
  start();
  // libzmq's own identities (5 bytes, a zero first), text identities, and a
  // frame that starts like a route but is too short.
  const std::byte zmq_id[5] = {std::byte{0}, std::byte{0x6b}, std::byte{0x8b}, std::byte{0x45},
                               std::byte{0x67}};
  for (const Buffer& id :
       {Buffer::copy_of(zmq_id, 5), text("c1"), text(std::string_view("\0chroma\1", 8))}) {
    EXPECT_FALSE(ChromaFront::is_chroma_route({id, Buffer{}, text("ACK")}));
    EXPECT_TRUE(front->on_router_reply(std::vector<Buffer>{id, text("ACK")}, std::nullopt).empty());
  }
  add_worker("w1");
  req("c1", bytes_of(list(1)));
  ASSERT_EQ(backend_out.size(), 1u);
  for (const auto& f : backend_out[0].frames) {
    EXPECT_EQ(str(f).find("c1"), std::string::npos)
        << "workers see the router's job slot, not the client";
  }
}

TEST(ChromaOptions, TheByteLimitMustHoldTheLargestList) {
  ChromaOptions o;
  EXPECT_NO_THROW(o.validate());
  o.max_message_bytes = 100'000'000;  // < 10 M photons x 48 bytes
  EXPECT_THROW(o.validate(), SetupError);
  o.limits.max_photons = 1'000'000;
  EXPECT_NO_THROW(o.validate());
  o.limits.max_photons = 0;
  EXPECT_THROW(o.validate(), SetupError);
}

}  // namespace
}  // namespace acheron::charon
