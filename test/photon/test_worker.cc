// photon::Worker behind a ROUTER that plays the broker: requests that wait
// while the engine is busy run as one engine batch, each with its own reply,
// and batching does not change any event's hits.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "TestBytes.hh"
#include "acheron/net/Zmq.hh"
#include "acheron/optics/Sources.hh"
#include "acheron/photon/Client.hh"
#include "acheron/photon/Worker.hh"
#include "acheron/wire/Charon.hh"

namespace acheron::photon {
namespace {
namespace charon = wire::charon;
using namespace std::chrono_literals;

using test_support::str;
using test_support::text;

// An isotropic point source at the centre of the detector, `n` photons.
std::vector<Buffer> request_for(std::uint32_t event_id, std::uint32_t n) {
  optics::PhotonBatch batch;
  optics::append_photons(batch, optics::IsotropicSource{}, n, event_id, 7);
  const auto e = EventPhotons::from_batch(batch, event_id, event_id);
  return charon::encode_photon_data(e.event_id, e.f32, &e.flags);
}

class WorkerTest : public ::testing::Test {
 protected:
  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
  std::string endpoint;
  std::shared_ptr<const optics::Detector> detector =
      std::make_shared<const optics::Detector>(optics::Detector::default_detector());

  WorkerTest() {
    net::set_linger(router, 0ms);
    router.bind("tcp://127.0.0.1:*");
    endpoint = router.get(zmq::sockopt::last_endpoint);
  }

  // The next message from the worker within `timeout`, skipping heartbeats.
  std::vector<Buffer> next(std::chrono::milliseconds timeout, bool skip_control = true) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    std::vector<Buffer> frames;
    while (std::chrono::steady_clock::now() < until) {
      zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, 50ms);
      if (!(item.revents & ZMQ_POLLIN)) continue;
      net::recv_frames(router, frames);
      if (skip_control && frames.size() == 2) continue;
      return frames;
    }
    return {};
  }
};

TEST_F(WorkerTest, WaitingRequestsRunAsOneBatchWithTheSameHitsAsAlone) {
  WorkerOptions options;
  options.connect = endpoint;
  options.service.threads = 2;
  options.service.seed = 11;
  options.max_concurrent = 1;
  Worker worker(detector, options);
  std::thread runner([&] { worker.run(); });

  auto ready = next(5s, false);
  ASSERT_EQ(ready.size(), 2u);
  ASSERT_EQ(ready[1].size(), 1u);
  EXPECT_EQ(static_cast<std::uint8_t>(ready[1].data()[0]), charon::kReady);
  const Buffer worker_id = ready[0];

  constexpr std::uint32_t kEvents = 6;
  constexpr std::uint32_t kPhotons = 20000;
  std::map<std::string, std::vector<Buffer>> requests;
  for (std::uint32_t e = 0; e < kEvents; ++e)
    requests["client" + std::to_string(e)] = request_for(100 + e, kPhotons);
  // All built first, then sent back to back: the worker sees the last five
  // arrive while it simulates the first, even in a slow (sanitizer) build.
  for (const auto& [client, body] : requests) {
    std::vector<Buffer> frames = {worker_id, text(client), Buffer{}};
    frames.insert(frames.end(), body.begin(), body.end());
    net::send_frames(router, frames);
  }

  PhotonService alone(detector, options.service);
  for (std::uint32_t i = 0; i < kEvents; ++i) {
    auto reply = next(60s);
    ASSERT_GE(reply.size(), 4u) << "reply " << i;
    const std::string client = str(reply[1]);
    ASSERT_TRUE(requests.count(client)) << client;
    EXPECT_TRUE(reply[2].empty());
    // The same event simulated alone gives the same reply, frame for frame.
    std::vector<Buffer> body(requests[client].begin(), requests[client].end());
    auto decoded = charon::decode_request(body, options.service.limits);
    auto expected = alone.simulate(std::get<charon::Request>(decoded).photons);
    ASSERT_EQ(reply.size() - 3, expected.size());
    EXPECT_EQ(str(reply[3]), charon::kSimComplete);
    for (std::size_t f = 0; f < expected.size(); ++f) {
      EXPECT_EQ(str(reply[3 + f]), str(expected[f])) << client << " frame " << f;
    }
    requests.erase(client);
  }
  EXPECT_TRUE(requests.empty());
  worker.stop();
  runner.join();
  const auto stats = worker.stats();
  EXPECT_EQ(stats.events, kEvents);
  // Five requests arrive within microseconds while the first one simulates
  // (tens of milliseconds), so they cannot all have run alone.
  EXPECT_LT(stats.batches, kEvents);
  EXPECT_GE(stats.batches, 1u);
}

// An asynchronous-mode broker's slot ('S', job number, "STEP") gets the
// STEPS frame after SIM_COMPLETE; any other slot gets SIM_COMPLETE alone.
// SIM_COMPLETE itself is byte for byte what a service without step history
// sends.
TEST_F(WorkerTest, AStepsSlotGetsTheStepsFrameAndSimCompleteIsUnchanged) {
  WorkerOptions options;
  options.connect = endpoint;
  options.service.threads = 2;
  options.service.seed = 5;
  options.service.step_history = 8;
  Worker worker(detector, options);
  std::thread runner([&] { worker.run(); });
  auto ready = next(5s, false);
  ASSERT_EQ(ready.size(), 2u);
  const Buffer worker_id = ready[0];

  Buffer steps_slot = Buffer::allocate(charon::kStepsSlotSize);
  std::memset(steps_slot.mutable_data(), 0, charon::kStepsSlotSize);
  steps_slot.mutable_data()[0] = static_cast<std::byte>(charon::kStepsSlotTag);
  std::memcpy(steps_slot.mutable_data() + 9, "STEP", 4);
  ASSERT_TRUE(charon::slot_wants_steps(steps_slot));
  const auto body = request_for(42, 20000);
  std::map<std::string, std::vector<Buffer>> replies;
  for (const Buffer& slot : {steps_slot, text("Jplainslot")}) {
    std::vector<Buffer> frames = {worker_id, slot, Buffer{}};
    frames.insert(frames.end(), body.begin(), body.end());
    net::send_frames(router, frames);
    auto reply = next(60s);
    ASSERT_GE(reply.size(), 4u);
    replies[str(reply[1])] = std::vector<Buffer>(reply.begin() + 3, reply.end());
  }
  worker.stop();
  runner.join();

  ServiceOptions before = options.service;
  before.step_history = 0;
  PhotonService plain(detector, before);
  std::vector<Buffer> request(body.begin(), body.end());
  const auto expected =
      plain.simulate(std::get<charon::Request>(charon::decode_request(request)).photons);
  ASSERT_EQ(expected.size(), 12u);
  const auto& with_steps = replies[str(steps_slot)];
  const auto& without = replies["Jplainslot"];
  ASSERT_EQ(without.size(), 12u) << "no STEPS frame without the steps slot";
  ASSERT_EQ(with_steps.size(), 13u) << "SIM_COMPLETE and the STEPS frame";
  for (std::size_t f = 0; f < 12; ++f) {
    EXPECT_EQ(str(without[f]), str(expected[f])) << "frame " << f;
    EXPECT_EQ(str(with_steps[f]), str(expected[f])) << "frame " << f;
  }
  const std::size_t hits = expected[2].size() / 4;
  ASSERT_GT(hits, 100u);
  auto steps = charon::decode_hit_steps(with_steps[12], hits);
  ASSERT_TRUE(steps) << steps.error().message;
  EXPECT_EQ(steps->history_length, 8u);
  for (std::size_t i = 0; i < hits; ++i) {
    EXPECT_GE(steps->boundaries[i], 1u);
    EXPECT_NE(steps->sequence[i], 0u);
    // The last recorded step of a hit that made at most 8 is the detection.
    if (steps->steps[i] <= 8) {
      EXPECT_EQ(optics::step_at(steps->sequence[i], steps->steps[i] - 1),
                optics::step_code::surface_detect);
    }
  }
}

TEST_F(WorkerTest, BatchesHoldAtMostTheBatchSizeAndDistinctEventIds) {
  WorkerOptions options;
  options.connect = endpoint;
  options.service.threads = 1;
  options.max_concurrent = 1;
  options.photons_per_batch = 2000;  // two 1000-photon events per batch
  Worker worker(detector, options);
  std::thread runner([&] { worker.run(); });
  auto ready = next(5s, false);
  ASSERT_EQ(ready.size(), 2u);
  // Event 5 twice (two clients): the repeat must not share a batch with it.
  const std::uint32_t ids[] = {1, 5, 5, 6, 7, 8, 9};
  for (std::size_t i = 0; i < std::size(ids); ++i) {
    auto body = request_for(ids[i], 1000);
    std::vector<Buffer> frames = {ready[0], text("c" + std::to_string(i)), Buffer{}};
    frames.insert(frames.end(), body.begin(), body.end());
    net::send_frames(router, frames);
  }
  std::map<std::string, std::uint32_t> got;
  for (std::size_t i = 0; i < std::size(ids); ++i) {
    auto reply = next(60s);
    ASSERT_GE(reply.size(), 5u);
    EXPECT_EQ(str(reply[3]), charon::kSimComplete);
    std::uint32_t event = 0;
    std::memcpy(&event, reply[4].data(), 4);
    got[str(reply[1])] = event;
  }
  for (std::size_t i = 0; i < std::size(ids); ++i) EXPECT_EQ(got["c" + std::to_string(i)], ids[i]);
  worker.stop();
  runner.join();
  // 7 events of 1000 photons at most 2 per batch: at least 4 batches.
  EXPECT_GE(worker.stats().batches, 4u);
  EXPECT_EQ(worker.stats().events, std::size(ids));
}

// --- Leaving cleanly (SIGTERM under Slurm) ----------------------------------

// The first byte of a one-frame control message, or -1 for anything else.
int control_byte(const std::vector<Buffer>& frames) {
  if (frames.size() != 2 || frames[1].empty()) return -1;
  return static_cast<std::uint8_t>(frames[1].data()[0]);
}

TEST_F(WorkerTest, WorkerInfoFollowsEveryReady) {
  WorkerOptions options;
  options.connect = endpoint;
  options.info = {{"node", "n17"}, {"slurm_job_id", "4242"}};
  Worker worker(detector, options);
  std::thread runner([&] { worker.run(); });
  auto ready = next(5s, false);
  ASSERT_EQ(control_byte(ready), charon::kReady);
  auto info = next(5s, false);
  ASSERT_EQ(control_byte(info), charon::kWorkerInfo);
  const auto j = nlohmann::json::parse(str(info[1]).substr(1));
  EXPECT_EQ(j["node"], "n17");
  EXPECT_EQ(j["slurm_job_id"], "4242");
  worker.stop();
  runner.join();
}

TEST_F(WorkerTest, EnvironmentInfoNamesTheNodeAndTheSlurmJob) {
  ::setenv("SLURMD_NODENAME", "node-a", 1);
  ::setenv("SLURM_JOB_ID", "51", 1);
  ::setenv("SLURM_ARRAY_JOB_ID", "50", 1);
  ::setenv("SLURM_ARRAY_TASK_ID", "1", 1);
  ::unsetenv("SLURM_RESTART_COUNT");
  auto info = worker_info_from_environment();
  EXPECT_EQ(info.count("slurm_restart_count"), 0u) << "a job that never restarted";
  ::setenv("SLURM_RESTART_COUNT", "2", 1);  // requeued twice
  info = worker_info_from_environment();
  EXPECT_EQ(info["slurm_restart_count"], "2");
  EXPECT_EQ(info["node"], "node-a");
  EXPECT_EQ(info["slurm_job_id"], "51");
  EXPECT_EQ(info["slurm_array_job_id"], "50");
  EXPECT_EQ(info["slurm_array_task_id"], "1");
  EXPECT_EQ(info["pid"], std::to_string(::getpid()));
  for (const char* v : {"SLURMD_NODENAME", "SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID",
                        "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT"})
    ::unsetenv(v);
  info = worker_info_from_environment();
  EXPECT_FALSE(info["node"].empty()) << "the host name outside Slurm";
  EXPECT_EQ(info.count("slurm_job_id"), 0u);
}

// drain() while an event simulates: DRAINING, then that event's reply, then
// DISCONNECT; a request that arrives after DRAINING is not started (the
// broker gets it back with DISCONNECT) and run() returns.
TEST_F(WorkerTest, DrainFinishesTheEventInHandAndHandsBackTheRest) {
  WorkerOptions options;
  options.connect = endpoint;
  options.service.threads = 1;
  options.service.seed = 3;
  options.grace = 600s;  // never reached: the event finishes
  Worker worker(detector, options);
  std::thread runner([&] { worker.run(); });
  auto ready = next(5s, false);
  ASSERT_EQ(control_byte(ready), charon::kReady);
  auto send = [&](const std::string& client, std::uint32_t event, std::uint32_t n) {
    auto body = request_for(event, n);
    std::vector<Buffer> frames = {ready[0], text(client), Buffer{}};
    frames.insert(frames.end(), body.begin(), body.end());
    net::send_frames(router, frames);
  };
  send("first", 1, 200000);
  while (worker.stats().in_hand == 0) std::this_thread::sleep_for(1ms);
  worker.drain();
  std::vector<std::vector<Buffer>> seen;
  for (;;) {
    auto m = next(30s, false);
    ASSERT_FALSE(m.empty()) << "no DRAINING";
    if (control_byte(m) == charon::kDraining) break;
    if (control_byte(m) != charon::kHeartbeat) seen.push_back(std::move(m));
  }
  EXPECT_TRUE(seen.empty()) << "nothing but heartbeats before DRAINING";
  send("second", 2, 1000);  // reached the worker after DRAINING
  for (;;) {
    auto m = next(60s, false);
    ASSERT_FALSE(m.empty()) << "no DISCONNECT";
    if (control_byte(m) == charon::kDisconnect) break;
    if (control_byte(m) != charon::kHeartbeat) seen.push_back(std::move(m));
  }
  ASSERT_EQ(seen.size(), 1u) << "exactly one reply before DISCONNECT";
  EXPECT_EQ(str(seen[0][1]), "first");
  EXPECT_EQ(str(seen[0][3]), charon::kSimComplete);
  runner.join();  // run() returns by itself
  const auto stats = worker.stats();
  EXPECT_EQ(stats.events, 1u);
  EXPECT_EQ(stats.handed_back, 1u);
  EXPECT_FALSE(stats.abandoned);
}

// When the grace is over before the event in hand, it is handed back
// unanswered: DRAINING, then DISCONNECT with no reply between them.
TEST_F(WorkerTest, DrainHandsBackTheEventInHandWhenTheGraceIsOver) {
  WorkerOptions options;
  options.connect = endpoint;
  options.service.threads = 1;
  options.grace = 0ms;
  Worker worker(detector, options);
  std::thread runner([&] { worker.run(); });
  auto ready = next(5s, false);
  ASSERT_EQ(control_byte(ready), charon::kReady);
  auto body = request_for(1, 300000);  // about a second of work on one thread
  std::vector<Buffer> frames = {ready[0], text("c"), Buffer{}};
  frames.insert(frames.end(), body.begin(), body.end());
  net::send_frames(router, frames);
  while (worker.stats().in_hand == 0) std::this_thread::sleep_for(1ms);
  worker.drain();
  std::vector<int> order;
  for (;;) {
    auto m = next(30s, false);
    ASSERT_FALSE(m.empty()) << "no DISCONNECT";
    const int b = control_byte(m);
    if (b == charon::kHeartbeat) continue;
    order.push_back(b);
    if (b == charon::kDisconnect) break;
  }
  EXPECT_EQ(order, (std::vector<int>{charon::kDraining, charon::kDisconnect}));
  runner.join();
  const auto stats = worker.stats();
  EXPECT_TRUE(stats.abandoned);
  EXPECT_EQ(stats.handed_back, 1u);
}

}  // namespace
}  // namespace acheron::photon
