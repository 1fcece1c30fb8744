// The broker's routing policy without sockets, on a fake clock: every rule of
// charon-protocol.md §8 as the router applies it.
#include "acheron/charon/CharonRouter.hh"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <memory>

#include "RouterFixture.hh"
#include "RouterTestUtil.hh"

namespace acheron::charon {
namespace {
using namespace std::chrono_literals;
using namespace testutil;
using State = WorkerView::State;

// --- Requests the broker answers itself -----------------------------------

TEST_F(RouterTest, PingIsAnsweredWithNoWorkers) {
  expect_reply(client("c1", {text("PING")}), "c1", "ACK");
  now += 1h;  // long after the no-worker grace
  tick();
  expect_reply(client("c2", {text("PING"), text("extra")}), "c2", "ACK");
}

TEST_F(RouterTest, PingReplyPongWhenConfigured) {
  opts.ping_reply = PingReply::pong;
  expect_reply(client("c1", {text("PING")}), "c1", "PONG");
}

TEST_F(RouterTest, DealerClientGetsReplyWithoutDelimiter) {
  auto out = r().on_frontend_message({text("d1"), text("PING")}, kPeer, now);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].frames.size(), 2u);
  EXPECT_EQ(str(out[0].frames[0]), "d1");
  EXPECT_EQ(str(out[0].frames[1]), "ACK");
}

TEST_F(RouterTest, RunBeginAndRunEndAreAcknowledged) {
  expect_reply(client("c1", wire::charon::encode_run_begin("out.root")), "c1", "ACK");
  expect_reply(client("c1", {text("RUN_BEGIN")}), "c1", "ACK");  // no filename
  expect_reply(client("c1", {text("RUN_END")}), "c1", "ACK");
  EXPECT_EQ(r().stats().run_control, 3u);
}

TEST_F(RouterTest, StatsReplyIsJson) {
  add_worker("w1");
  client("c1", photon_request(5));
  auto f = frontend_out(client("c2", {text("STATS")}));
  ASSERT_EQ(f.size(), 1u);
  ASSERT_EQ(f[0].frames.size(), 4u);
  EXPECT_EQ(str(f[0].frames[2]), "STATS");
  auto j = nlohmann::json::parse(str(f[0].frames[3]));
  EXPECT_EQ(j["role"], "broker");
  EXPECT_EQ(j["workers"], 1);
  EXPECT_EQ(j["workers_busy"], 1);
  EXPECT_EQ(j["workers_idle"], 0);
  EXPECT_EQ(j["dispatched"], 1);
  EXPECT_EQ(j["queue_depth"], 0);
  EXPECT_EQ(j["detector_channels"], 3);
  for (const char* k : {"requests", "retried", "failed", "no_workers", "duplicates", "completed",
                        "expired", "in_flight", "latency_ms"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_EQ(j["latency_ms"]["counts"].size(), j["latency_ms"]["bounds"].size() + 1);
}

// --- Malformed input ---------------------------------------------------------

TEST_F(RouterTest, MalformedRequestsGetTheCodecReplyAndNothingElse) {
  add_worker("w1");
  // PHOTONDATA with too few frames: SIM_FAILED with the event id of frame 1.
  auto bad = photon_request(42);
  bad.resize(5);
  const auto& out = client("c1", bad);
  expect_reply(out, "c1", "SIM_FAILED");
  EXPECT_EQ(u32(frontend_out(out)[0].frames[3]), 42u);
  EXPECT_TRUE(jobs(out).empty());
  // Arrays of different lengths.
  bad = photon_request(43, 4);
  bad[5] = text("abc");
  expect_reply(client("c1", bad), "c1", "SIM_FAILED");
  // Unknown header.
  expect_reply(client("c1", {text("HELLO")}), "c1", "UNKNOWN_REQUEST");
  EXPECT_TRUE(jobs(last).empty());
  const auto s = r().stats();
  EXPECT_EQ(s.rejected, 3u);
  EXPECT_EQ(s.dispatched, 0u);
  EXPECT_EQ(s.queue_depth, 0u);
  EXPECT_EQ(r().worker("w1")->state, State::idle);
}

TEST_F(RouterTest, MessageWithoutEnvelopeIsDropped) {
  EXPECT_TRUE(r().on_frontend_message({}, kPeer, now).empty());
  EXPECT_TRUE(r().on_frontend_message({text("c1")}, kPeer, now).empty());
  EXPECT_TRUE(r().on_frontend_message({text("c1"), Buffer{}}, kPeer, now).empty());
  EXPECT_TRUE(r().on_frontend_message({Buffer{}, text("PING")}, kPeer, now).empty());
  EXPECT_EQ(r().stats().dropped, 4u);
}

TEST_F(RouterTest, BadBackendMessagesAreIgnored) {
  add_worker("w1");
  const auto slot_like = text("J12345678");  // right size, unknown job
  std::vector<std::vector<Buffer>> garbage = {
      {},
      {text("w1")},
      {Buffer{}, text("\x02")},
      {text("w1"), text("\x07")},                                                // unknown control
      {text("w1"), Buffer{}},                                                    // empty control
      {text("w1"), text("client"), Buffer{}, text("SIM_COMPLETE")},              // unknown slot
      {text("w1"), slot_like, Buffer{}, text("SIM_COMPLETE")},                   // unknown job
      {text("w1"), text(std::string_view("P\x01\0\0\0\0\0\0\0", 9)), Buffer{}},  // stale probe
      {text("w9"), text("zzz"), text("x"), text("y")},  // unknown worker, junk
  };
  for (auto& g : garbage) {
    auto out = backend(g);
    EXPECT_TRUE(frontend_out(out).empty());
    EXPECT_TRUE(jobs(out).empty());
  }
  EXPECT_GE(r().stats().bad_backend_messages, 5u);
  EXPECT_EQ(r().worker("w1")->state, State::idle);
  // Still serving.
  auto j = jobs(client("c1", photon_request(1)));
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(str(j[0].frames[0]), "w1");
}

TEST_F(RouterTest, EmptyReplyPutsTheJobBack) {
  add_worker("w1");
  auto j = jobs(client("c1", photon_request(1)));
  ASSERT_EQ(j.size(), 1u);
  // [worker, slot, ""] with no reply at all: the job is re-dispatched.
  auto again = jobs(backend({text("w1"), j[0].frames[1], Buffer{}}));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(event_of(again[0]), 1u);
  EXPECT_EQ(r().stats().retried, 1u);
}

// --- Workers: registration, probe, LRU, prefetch -----------------------------

TEST_F(RouterTest, NewWorkerIsProbedAndUsedAfterItsAnswer) {
  ready("w1");
  ASSERT_EQ(probes(last).size(), 1u);
  const Buffer slot = probes(last)[0].frames[1];
  EXPECT_EQ(r().worker("w1")->state, State::probing);
  // A request before the probe is answered waits.
  EXPECT_TRUE(client("c1", photon_request(7)).empty());
  EXPECT_EQ(r().stats().queue_depth, 1u);
  auto j = jobs(worker_reply("w1", slot, wire::charon::encode_detector_info(detector())));
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(str(j[0].frames[0]), "w1");
  EXPECT_EQ(j[0].frames[1].size(), 9u) << "the client slot holds the broker's job reference";
  EXPECT_TRUE(j[0].frames[2].empty());
  EXPECT_EQ(str(j[0].frames[3]), "PHOTONDATA");
  EXPECT_EQ(event_of(j[0]), 7u);
  // The reply goes back to the client's real route.
  auto f = frontend_out(complete(j[0]));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(str(f[0].frames[0]), "c1");
  EXPECT_TRUE(f[0].frames[1].empty());
  EXPECT_EQ(str(f[0].frames[2]), "SIM_COMPLETE");
  EXPECT_EQ(u32(f[0].frames[3]), 7u);
  EXPECT_EQ(f[0].frames.size(), 2u + 12u);
  EXPECT_EQ(r().worker("w1")->state, State::idle);
}

TEST_F(RouterTest, UnknownWorkerHeartbeatRegistersIt) {
  heartbeat("w1");
  EXPECT_EQ(probes(last).size(), 1u);
  EXPECT_EQ(r().worker("w1")->state, State::probing);
}

TEST_F(RouterTest, LeastRecentlyUsedIdleWorkerGetsTheJob) {
  add_worker("A");
  add_worker("B");
  add_worker("C");
  auto j1 = jobs(client("c1", photon_request(1)));
  auto j2 = jobs(client("c2", photon_request(2)));
  ASSERT_EQ(j1.size(), 1u);
  ASSERT_EQ(j2.size(), 1u);
  EXPECT_EQ(str(j1[0].frames[0]), "A");
  EXPECT_EQ(str(j2[0].frames[0]), "B");
  complete(j1[0]);  // A is idle again, but C has waited longer
  auto j3 = jobs(client("c3", photon_request(3)));
  auto j4 = jobs(client("c4", photon_request(4)));
  ASSERT_EQ(j3.size(), 1u);
  ASSERT_EQ(j4.size(), 1u);
  EXPECT_EQ(str(j3[0].frames[0]), "C");
  EXPECT_EQ(str(j4[0].frames[0]), "A");
}

TEST_F(RouterTest, HeartbeatFromBusyWorkerDoesNotMakeItIdle) {
  add_worker("A");
  client("c1", photon_request(1));
  now += 800ms;
  heartbeat("A");
  EXPECT_EQ(r().worker("A")->state, State::busy);
  // So a second request waits instead of stacking up behind the first.
  EXPECT_TRUE(jobs(client("c2", photon_request(2))).empty());
  EXPECT_EQ(r().stats().queue_depth, 1u);
}

TEST_F(RouterTest, PrefetchKeepsSeveralJobsInFlightPerWorker) {
  opts.worker_prefetch = 2;
  add_worker("A");
  auto j1 = jobs(client("c1", photon_request(1)));
  auto j2 = jobs(client("c2", photon_request(2)));
  auto j3 = jobs(client("c3", photon_request(3)));
  EXPECT_EQ(j1.size(), 1u);
  EXPECT_EQ(j2.size(), 1u);
  EXPECT_TRUE(j3.empty());
  EXPECT_EQ(r().worker("A")->in_flight, 2u);
  auto next = jobs(complete(j2[0]));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(event_of(next[0]), 3u);
  EXPECT_EQ(r().worker("A")->in_flight, 2u);
}

TEST_F(RouterTest, PrefetchPrefersTheLeastLoadedWorker) {
  opts.worker_prefetch = 2;
  add_worker("A");
  add_worker("B");
  auto j1 = jobs(client("c1", photon_request(1)));
  auto j2 = jobs(client("c2", photon_request(2)));
  auto j3 = jobs(client("c3", photon_request(3)));
  ASSERT_EQ(j3.size(), 1u);
  EXPECT_EQ(str(j1[0].frames[0]), "A");
  EXPECT_EQ(str(j2[0].frames[0]), "B");
  EXPECT_EQ(str(j3[0].frames[0]), "A");
}

// --- Queue, don't reject -------------------------------------------------------

TEST_F(RouterTest, BusyWorkersMeanQueueNotReject) {
  add_worker("A");
  auto first = jobs(client("c0", photon_request(0)));
  ASSERT_EQ(first.size(), 1u);
  for (std::uint32_t e = 1; e <= 5; ++e) {
    EXPECT_TRUE(client("c" + std::to_string(e), photon_request(e)).empty());
  }
  EXPECT_EQ(r().stats().queue_depth, 5u);
  // FIFO as the worker frees up.
  Outgoing current = first[0];
  for (std::uint32_t e = 1; e <= 5; ++e) {
    auto next = jobs(complete(current));
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(event_of(next[0]), e);
    current = next[0];
  }
  EXPECT_EQ(r().stats().no_workers, 0u);
}

TEST_F(RouterTest, FullQueueByCountGivesNoWorkers) {
  opts.max_queue_jobs = 2;
  add_worker("A");
  client("c0", photon_request(0));  // in flight, not queued
  EXPECT_TRUE(client("c1", photon_request(1)).empty());
  EXPECT_TRUE(client("c2", photon_request(2)).empty());
  expect_reply(client("c3", photon_request(3)), "c3", "NO_WORKERS");
  EXPECT_EQ(r().stats().queue_depth, 2u);
  EXPECT_EQ(r().stats().no_workers, 1u);
}

TEST_F(RouterTest, FullQueueByBytesGivesNoWorkers) {
  const auto small = photon_request(1, 4);
  std::uint64_t bytes = 0;
  for (const auto& f : small) bytes += f.size();
  opts.max_queue_bytes = bytes + 10;
  add_worker("A");
  client("c0", photon_request(0));
  EXPECT_TRUE(client("c1", small).empty());
  expect_reply(client("c2", photon_request(2, 4, 9)), "c2", "NO_WORKERS");
  // A request larger than the whole limit still runs when a worker is free.
  opts.max_queue_bytes = 1;
  router.reset();
  add_worker("A");
  EXPECT_EQ(jobs(client("c0", photon_request(0, 100))).size(), 1u);
}

// --- Fairness between clients ---------------------------------------------------

// A client that queues many requests (one DEALER socket) does not push
// another client's request behind all of them: the queue serves clients in
// turn (FairQueue.hh). A FIFO would dispatch the late request 21st.
TEST_F(RouterTest, ALateClientIsNotQueuedBehindAnotherClientsBacklog) {
  add_worker("A");
  auto current = jobs(client("flood", photon_request(0), "10.0.0.1"));
  ASSERT_EQ(current.size(), 1u);
  for (std::uint32_t e = 1; e <= 20; ++e) client("flood", photon_request(e), "10.0.0.1");
  client("lone", photon_request(1000), "10.0.0.2");
  EXPECT_EQ(r().stats().queue_depth, 21u);
  EXPECT_EQ(r().stats().queue_hosts, 2u);
  std::vector<std::uint32_t> order;
  for (int i = 0; i < 21; ++i) {
    auto next = jobs(complete(current[0]));
    ASSERT_EQ(next.size(), 1u);
    order.push_back(event_of(next[0]));
    current = next;
  }
  const auto lone = std::find(order.begin(), order.end(), 1000u) - order.begin();
  EXPECT_LE(lone, 1) << "dispatched at position " << lone;
  // The flood's own requests keep their order.
  std::erase(order, 1000u);
  for (std::uint32_t e = 1; e <= 20; ++e) EXPECT_EQ(order[e - 1], e);
}

// The same between two sockets of one host (loopback clients share an
// address).
TEST_F(RouterTest, SocketsOfOneHostAreServedInTurn) {
  add_worker("A");
  auto current = jobs(client("dealer", photon_request(0)));
  for (std::uint32_t e = 1; e <= 10; ++e) client("dealer", photon_request(e));
  client("req", photon_request(500));
  auto next = jobs(complete(current[0]));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(event_of(next[0]), 1u) << "the dealer's next was already due";
  next = jobs(complete(next[0]));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(event_of(next[0]), 500u);
}

// One host may have max_queue_jobs_per_host requests waiting; beyond that
// its new requests get NO_WORKERS while other hosts still queue.
TEST_F(RouterTest, AHostOverItsShareOfTheQueueGetsNoWorkers) {
  opts.max_queue_jobs_per_host = 3;
  add_worker("A");
  auto running = jobs(client("c0", photon_request(0), "10.0.0.1"));
  ASSERT_EQ(running.size(), 1u);  // dispatched at once: not counted as waiting
  for (std::uint32_t e = 1; e <= 3; ++e) {
    EXPECT_TRUE(client("c" + std::to_string(e), photon_request(e), "10.0.0.1").empty());
  }
  expect_reply(client("c4", photon_request(4), "10.0.0.1"), "c4", "NO_WORKERS");
  EXPECT_TRUE(client("other", photon_request(5), "10.0.0.2").empty());
  auto s = r().stats();
  EXPECT_EQ(s.queue_depth, 4u);
  EXPECT_EQ(s.no_workers, 1u);
  EXPECT_EQ(s.host_limited, 1u);
  EXPECT_EQ(r().stats_json(now)["host_limited"], 1);
  // A slot frees up when one of its requests goes to the worker.
  complete(running[0]);
  EXPECT_TRUE(client("c6", photon_request(6), "10.0.0.1").empty());
  expect_reply(client("c7", photon_request(7), "10.0.0.1"), "c7", "NO_WORKERS");
}

TEST_F(RouterTest, PerHostBoundMustBePositive) {
  opts.max_queue_jobs_per_host = 0;
  try {
    r();
    FAIL() << "accepted max_queue_jobs_per_host 0";
  } catch (const SetupError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("max_queue_jobs_per_host"));
  }
}

// A job whose worker died goes back to the head of the queue, ahead of
// every client's turn.
TEST_F(RouterTest, RetriedJobsGoAheadOfTheFairQueue) {
  add_worker("A");
  auto first = jobs(client("flood", photon_request(0), "10.0.0.1"));
  for (std::uint32_t e = 1; e <= 3; ++e) client("flood", photon_request(e), "10.0.0.1");
  client("lone", photon_request(100), "10.0.0.2");
  r().on_worker_unreachable("A", now);
  add_worker("B");
  auto next = jobs(last);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(event_of(next[0]), 0u);
}

TEST_F(RouterTest, NoWorkersOnlyAfterTheGraceCountedFromStart) {
  r();  // starts the clock
  now += 1s;
  EXPECT_TRUE(client("c1", photon_request(1)).empty()) << "queued while workers may connect";
  run_for(8s);
  EXPECT_TRUE(frontend_out(last).empty());
  // 10 s after the start the waiting request is told.
  now += 1s;
  expect_reply(tick(), "c1", "NO_WORKERS");
  EXPECT_EQ(r().stats().queue_depth, 0u);
  // And new ones are refused at once.
  expect_reply(client("c2", photon_request(2)), "c2", "NO_WORKERS");
  // A worker turns up: queueing resumes.
  ready("A");
  EXPECT_TRUE(client("c3", photon_request(3)).empty());
  EXPECT_EQ(r().stats().queue_depth, 1u);
}

TEST_F(RouterTest, GraceCountsFromTheLastWorkerLoss) {
  add_worker("A");
  run_for(20s, {"A"});
  r().on_worker_unreachable("A", now);
  now += 5s;
  EXPECT_TRUE(client("c1", photon_request(1)).empty());
  now += 4900ms;
  EXPECT_TRUE(frontend_out(tick()).empty());
  now += 100ms;
  expect_reply(tick(), "c1", "NO_WORKERS");
}

TEST_F(RouterTest, QueuedJobsExpireAfterTheTtl) {
  add_worker("A");
  auto first = jobs(client("c0", photon_request(0)));
  client("c1", photon_request(1));
  client("c2", photon_request(2));
  run_for(30s, {"A"});
  client("c2b", photon_request(2));  // a resend: its client still waits
  run_for(31s, {"A"});
  EXPECT_TRUE(frontend_out(last).empty()) << "expired jobs get no reply";
  EXPECT_EQ(r().stats().expired, 1u);
  EXPECT_EQ(r().stats().queue_depth, 1u);
  auto next = jobs(complete(first[0]));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(event_of(next[0]), 2u);
  // After expiry, a resend of event 1 is a new job.
  EXPECT_TRUE(client("c1b", photon_request(1)).empty());
  EXPECT_EQ(r().stats().queue_depth, 1u);
}

// --- Heartbeats and liveness ---------------------------------------------------

TEST_F(RouterTest, HeartbeatsGoToEveryWorkerEachIntervalWithoutTraffic) {
  add_worker("A");
  add_worker("B");
  client("c1", photon_request(1));  // A busy, B idle
  auto count_beats = [](const Outbox& out, std::string_view w) {
    int n = 0;
    for (const auto& o : out) {
      if (o.socket == Socket::backend && o.frames.size() == 2 && str(o.frames[0]) == w &&
          o.frames[1].size() == 1 &&
          static_cast<std::uint8_t>(o.frames[1].data()[0]) == wire::charon::kHeartbeat) {
        ++n;
      }
    }
    return n;
  };
  now += 999ms;
  EXPECT_EQ(count_beats(tick(), "A"), 0);
  now += 1ms;
  tick();
  EXPECT_EQ(count_beats(last, "A"), 1);
  EXPECT_EQ(count_beats(last, "B"), 1);
  now += 500ms;
  EXPECT_EQ(count_beats(tick(), "A"), 0);
  now += 500ms;
  tick();
  EXPECT_EQ(count_beats(last, "A"), 1);
  EXPECT_EQ(count_beats(last, "B"), 1);
}

TEST_F(RouterTest, IdleWorkerIsDeadAfterThreeSilentIntervals) {
  add_worker("A");
  now += 2900ms;
  tick();
  EXPECT_TRUE(r().worker("A"));
  now += 200ms;
  tick();
  EXPECT_FALSE(r().worker("A"));
  EXPECT_EQ(r().stats().workers_lost, 1u);
}

TEST_F(RouterTest, HeartbeatingWorkerStaysAlive) {
  add_worker("A");
  run_for(30s, {"A"});
  EXPECT_EQ(r().worker("A")->state, State::idle);
}

TEST_F(RouterTest, WorkerHeartbeatingWhileBusyIsDeadAfterThreeSeconds) {
  add_worker("A");
  add_worker("B");
  auto j = jobs(client("c1", photon_request(1)));
  ASSERT_EQ(str(j.at(0).frames[0]), "A");
  client("c2", photon_request(2));
  auto j2 = jobs(last);
  ASSERT_EQ(str(j2.at(0).frames[0]), "B");
  client("c3", photon_request(3));  // queued behind the dying job's retry
  run_for(1500ms, {"A", "B"});
  EXPECT_TRUE(r().worker("A")->heartbeats_while_busy);
  heartbeat("A");  // its last sign of life
  // A goes silent; B keeps heartbeating and finishes its job.
  complete(j2[0]);
  auto j3 = jobs(last);
  ASSERT_EQ(j3.size(), 1u);
  EXPECT_EQ(event_of(j3[0]), 3u);
  const TimePoint silent_since = now;
  Outbox dispatched;
  TimePoint next_beat = now + 1s;
  while (r().worker("A") && now < silent_since + 10s) {
    now += 100ms;
    if (now >= next_beat) {
      heartbeat("B");
      next_beat += 1s;
    }
    tick();
  }
  EXPECT_FALSE(r().worker("A"));
  const auto detected = now - silent_since;
  EXPECT_GT(detected, 3s);
  EXPECT_LE(detected, 3200ms);
  // The lost job is first in line: B gets event 1 as soon as it is free.
  auto retry = jobs(complete(j3[0]));
  ASSERT_EQ(retry.size(), 1u);
  EXPECT_EQ(event_of(retry[0]), 1u);
  EXPECT_EQ(str(retry[0].frames[0]), "B");
  EXPECT_EQ(r().stats().retried, 1u);
  expect_reply(complete(retry[0]), "c1", "SIM_COMPLETE");
}

TEST_F(RouterTest, HeartbeatInFlightAtDispatchDoesNotCountAsBusyHeartbeat) {
  add_worker("A");
  client("c1", photon_request(1));
  now += 10ms;
  heartbeat("A");  // sent before the job reached A
  EXPECT_FALSE(r().worker("A")->heartbeats_while_busy);
  // An original worker: silent while it simulates, far longer than 3 s.
  run_for(60s);
  ASSERT_TRUE(r().worker("A"));
  EXPECT_EQ(r().worker("A")->state, State::busy);
}

TEST_F(RouterTest, SilentBusyOriginalWorkerDiesAfterBusyTimeout) {
  opts.busy_timeout = 20s;
  add_worker("A");
  auto j = jobs(client("c1", photon_request(1)));
  ASSERT_EQ(j.size(), 1u);
  run_for(19500ms);
  EXPECT_TRUE(r().worker("A"));
  run_for(1s);
  EXPECT_FALSE(r().worker("A"));
  EXPECT_EQ(r().stats().queue_depth, 1u) << "its job is back in the queue";
  // A worker that replies after a long simulation is still fine.
  add_worker("B");
  auto j2 = jobs(last);
  ASSERT_EQ(j2.size(), 1u);
  run_for(15s);
  expect_reply(complete(j2[0]), "c1", "SIM_COMPLETE");
}

TEST_F(RouterTest, UnreachableWorkerReturnsItsJobsToTheQueueHead) {
  opts.worker_prefetch = 2;
  add_worker("A");
  auto j1 = jobs(client("c1", photon_request(1)));
  auto j2 = jobs(client("c2", photon_request(2)));
  auto j3 = jobs(client("c3", photon_request(3)));
  auto j4 = jobs(client("c4", photon_request(4)));
  ASSERT_EQ(j1.size() + j2.size(), 2u);
  EXPECT_EQ(r().stats().queue_depth, 2u);
  r().on_worker_unreachable("A", now);
  EXPECT_EQ(r().stats().queue_depth, 4u);
  add_worker("B");
  // Both are suspect now (their worker died with them): each runs alone,
  // oldest first, and nothing is packed beside it.
  auto again = jobs(last);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(event_of(again[0]), 1u);
  auto next = jobs(complete(again[0]));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(event_of(next[0]), 2u);
  // Once the suspects are done, B takes two at a time again.
  auto rest = jobs(complete(next[0]));
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(event_of(rest[0]), 3u);
  EXPECT_EQ(event_of(rest[1]), 4u);
}

// A request that crashes every worker it reaches (defect: through the broker
// the retries handed it to each worker in turn until the pool was gone). It
// is failed after poison_deaths workers died holding it alone; jobs that
// were in flight beside it on the first death are retried alone and do not
// share its fate.
TEST_F(RouterTest, APoisonRequestTakesDownAtMostPoisonDeathsWorkers) {
  opts.worker_prefetch = 2;
  ASSERT_EQ(opts.poison_deaths, 2);
  add_worker("w0");
  ASSERT_EQ(jobs(client("c1", photon_request(66))).size(), 1u);
  ASSERT_EQ(jobs(client("c2", photon_request(67))).size(), 1u);
  last = r().on_worker_unreachable("w0", now);  // dies with both
  add_worker("w1");
  auto j = jobs(last);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(event_of(j[0]), 66u);
  last = r().on_worker_unreachable("w1", now);  // 66 alone: its first lone death
  add_worker("w2");
  j = jobs(last);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(event_of(j[0]), 66u);
  last = r().on_worker_unreachable("w2", now);  // the second: poison
  expect_reply(last, "c1", "SIM_FAILED");
  EXPECT_EQ(r().stats().poison_failed, 1u);
  add_worker("w3");
  j = jobs(last);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(event_of(j[0]), 67u);  // the innocent job completes
  expect_reply(complete(j[0]), "c2", "SIM_COMPLETE");
  // A resend of the poison request is answered from the cache.
  const auto& out = client("c1b", photon_request(66));
  expect_reply(out, "c1b", "SIM_FAILED");
  EXPECT_TRUE(jobs(out).empty());
}

// Any peer could answer a queued job: a peer that never registered, or a
// worker that was never given the job, guessing the job's slot. Only the
// job's holders may answer it, and slots are not sequential.
TEST_F(RouterTest, OnlyTheWorkerGivenAJobMayAnswerIt) {
  opts.worker_prefetch = 1;
  add_worker("w1");
  add_worker("w2");
  auto j1 = jobs(client("c1", photon_request(1)));
  auto j2 = jobs(client("c2", photon_request(2)));
  ASSERT_EQ(j1.size(), 1u);
  ASSERT_EQ(j2.size(), 1u);
  const Outgoing& held_by_w1 = str(j1[0].frames[0]) == "w1" ? j1[0] : j2[0];
  const std::string client_of_w1 = str(j1[0].frames[0]) == "w1" ? "c1" : "c2";
  const std::span<const Buffer> body(held_by_w1.frames.data() + 3, held_by_w1.frames.size() - 3);
  // A peer that never registered.
  auto out = worker_reply("intruder", held_by_w1.frames[1], sim_complete_for(body));
  EXPECT_TRUE(frontend_out(out).empty());
  EXPECT_FALSE(r().worker("intruder")) << "a reply does not register a stranger";
  // A registered worker that holds another job.
  out = worker_reply("w2", held_by_w1.frames[1], sim_complete_for(body));
  EXPECT_TRUE(frontend_out(out).empty());
  EXPECT_EQ(r().stats().forged_replies, 2u);
  // The real holder's answer still goes through, once.
  expect_reply(complete(held_by_w1), client_of_w1, "SIM_COMPLETE");
  EXPECT_EQ(r().stats().completed, 1u);
  // Slots are not a counter: two consecutive jobs differ in more than the
  // lowest byte.
  auto a = jobs(client("c3", photon_request(3)));
  ASSERT_EQ(a.size(), 1u);
  const std::string s1 = str(held_by_w1.frames[1]), s2 = str(a[0].frames[1]);
  int differing = 0;
  for (std::size_t i = 1; i < s1.size(); ++i) differing += s1[i] != s2[i];
  EXPECT_GE(differing, 3);
}

// The operator's detector is the reference: a first worker with another
// detector cannot take over the broker, and clients get DETECTOR_INFO
// before any worker exists.
TEST_F(RouterTest, TheOperatorsDetectorIsTheReference) {
  opts.expected_detector = detector();
  auto info = frontend_out(client("c0", {text("DETECTOR_INFO")}));
  ASSERT_EQ(info.size(), 1u);
  EXPECT_EQ(str(info[0].frames[2]), "DETECTOR_INFO");
  wire::charon::DetectorInfo rogue;
  rogue.x = {1};
  rogue.y = {2};
  rogue.z = {3};
  rogue.type = {0};
  add_worker("rogue", rogue);
  EXPECT_EQ(r().worker("rogue")->state, State::rejected);
  add_worker("real");
  EXPECT_EQ(r().worker("real")->state, State::idle);
  auto j = jobs(client("c1", photon_request(1)));
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(str(j[0].frames[0]), "real");
  EXPECT_EQ(r().detector()->size(), detector().size());
}

TEST_F(RouterTest, RetriesExhaustedGiveSimFailedWithTheEventId) {
  opts.max_job_retries = 2;
  opts.poison_deaths = 3;  // retries, not the poison limit, end it here
  auto unreachable = [&](const std::string& w) { last = r().on_worker_unreachable(w, now); };
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::string w = "w" + std::to_string(attempt);
    if (attempt == 0) {
      add_worker(w);
      ASSERT_EQ(jobs(client("c1", photon_request(77))).size(), 1u);
    } else {
      add_worker(w);
      ASSERT_EQ(jobs(last).size(), 1u) << "the retry goes to the new worker";
    }
    unreachable(w);
  }
  expect_reply(last, "c1", "SIM_FAILED");
  EXPECT_EQ(u32(frontend_out(last)[0].frames[3]), 77u);
  EXPECT_EQ(r().stats().retried, 2u);
  EXPECT_EQ(r().stats().failed, 1u);
  EXPECT_EQ(r().stats().queue_depth, 0u);
  // A resend gets the same answer without endangering another worker.
  add_worker("w9");
  const auto& out = client("c1b", photon_request(77));
  expect_reply(out, "c1b", "SIM_FAILED");
  EXPECT_TRUE(jobs(out).empty());
}

TEST_F(RouterTest, ReadyFromABusyWorkerMeansItRestarted) {
  add_worker("A");
  auto j = jobs(client("c1", photon_request(1)));
  ASSERT_EQ(j.size(), 1u);
  ready("A");
  EXPECT_EQ(probes(last).size(), 1u) << "re-probed";
  EXPECT_EQ(r().stats().queue_depth, 1u) << "its job went back";
  worker_reply("A", probes(last)[0].frames[1], wire::charon::encode_detector_info(detector()));
  auto again = jobs(last);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(event_of(again[0]), 1u);
  // The reply to the first dispatch is now stale... or early: first answer wins.
  expect_reply(complete(j[0]), "c1", "SIM_COMPLETE");
  EXPECT_TRUE(frontend_out(complete(again[0])).empty());
  EXPECT_EQ(r().worker("A")->state, State::idle);
}

// --- Workers that say who they are and leave cleanly (Slurm) -----------------

TEST_F(RouterTest, WorkerInfoAppearsPerWorkerInStats) {
  add_worker("A");
  add_worker("B");  // a ChAR0N worker: READY and nothing else
  const std::string info =
      "\x03{\"node\":\"n17\",\"slurm_job_id\":\"4242\",\"slurm_array_job_id\":\"4240\","
      "\"slurm_array_task_id\":\"2\",\"pid\":77,\"nested\":{\"x\":1}}";
  backend({text("A"), text(info)});
  EXPECT_EQ(r().stats().bad_backend_messages, 0u);
  auto j = r().stats_json(now);
  ASSERT_EQ(j["worker_list"].size(), 2u);
  const auto& a = j["worker_list"][0];
  EXPECT_EQ(a["id"], "A");
  EXPECT_EQ(a["state"], "idle");
  EXPECT_EQ(a["node"], "n17");
  EXPECT_EQ(a["slurm_job_id"], "4242");
  EXPECT_EQ(a["slurm_array_job_id"], "4240");
  EXPECT_EQ(a["slurm_array_task_id"], "2");
  EXPECT_EQ(a["pid"], 77);
  EXPECT_FALSE(a.contains("nested")) << "only strings and integers are kept";
  const auto& b = j["worker_list"][1];
  EXPECT_EQ(b["id"], "B");
  EXPECT_FALSE(b.contains("node"));
  EXPECT_FALSE(b.contains("slurm_job_id"));
  // Info cannot rename or restate the broker's own fields.
  backend({text("B"), text("\x03{\"state\":\"idle?\",\"id\":\"Z\",\"node\":\"n1\"}")});
  j = r().stats_json(now);
  EXPECT_EQ(j["worker_list"][1]["id"], "B");
  EXPECT_EQ(j["worker_list"][1]["state"], "idle");
  EXPECT_EQ(j["worker_list"][1]["node"], "n1");
}

TEST_F(RouterTest, MalformedWorkerInfoIsCountedAndIgnored) {
  add_worker("A");
  backend({text("A"), text("\x03{\"node\":\"n1\"}")});
  for (const std::string bad : {"\x03", "\x03not json", "\x03[1,2]", "\x03{\"node\":"}) {
    backend({text("A"), text(bad)});
  }
  backend({text("A"), text("\x03{\"node\":\"" + std::string(5000, 'x') + "\"}")});
  EXPECT_EQ(r().stats().bad_backend_messages, 5u);
  EXPECT_EQ(r().stats_json(now)["worker_list"][0]["node"], "n1") << "earlier info kept";
  // From a peer that never sent READY: ignored, nobody registered.
  backend({text("X"), text("\x03{\"node\":\"n2\"}")});
  EXPECT_FALSE(r().worker("X").has_value());
}

TEST_F(RouterTest, DrainingWorkerFinishesItsJobAndGetsNoNewOne) {
  add_worker("A");
  auto j1 = jobs(client("c1", photon_request(1)));
  ASSERT_EQ(j1.size(), 1u);
  control("A", wire::charon::kDraining);
  EXPECT_TRUE(r().worker("A")->draining);
  EXPECT_EQ(r().stats().workers_draining, 1u);
  // Its job is still its own: the reply goes to the client.
  expect_reply(complete(j1[0]), "c1", "SIM_COMPLETE");
  // Idle but draining: a new request waits for another worker.
  EXPECT_TRUE(jobs(client("c2", photon_request(2))).empty());
  EXPECT_EQ(r().stats().queue_depth, 1u);
  add_worker("B");
  auto j2 = jobs(last);
  ASSERT_EQ(j2.size(), 1u);
  EXPECT_EQ(str(j2[0].frames[0]), "B");
  // Heartbeats keep a draining worker alive.
  run_for(5s, {"A", "B"});
  EXPECT_TRUE(r().worker("A").has_value());
}

TEST_F(RouterTest, DisconnectHandsBackUnansweredJobsWithoutUsingARetry) {
  opts.worker_prefetch = 2;
  opts.max_job_retries = 0;  // a death would fail the jobs at once
  add_worker("A");
  auto held = jobs(client("c1", photon_request(1)));
  auto more = jobs(client("c2", photon_request(2)));
  ASSERT_EQ(held.size() + more.size(), 2u);
  control("A", wire::charon::kDisconnect);
  EXPECT_FALSE(r().worker("A").has_value());
  EXPECT_TRUE(frontend_out(last).empty()) << "no SIM_FAILED: a hand-back is not a failure";
  const auto s = r().stats();
  EXPECT_EQ(s.workers_left, 1u);
  EXPECT_EQ(s.workers_lost, 0u);
  EXPECT_EQ(s.handed_back, 2u);
  EXPECT_EQ(s.retried, 0u);
  EXPECT_EQ(s.queue_depth, 2u);
  // Not suspect either: the next worker takes both at once, oldest first.
  add_worker("B");
  auto again = jobs(last);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(event_of(again[0]), 1u);
  EXPECT_EQ(event_of(again[1]), 2u);
  expect_reply(complete(again[0]), "c1", "SIM_COMPLETE");
  expect_reply(complete(again[1]), "c2", "SIM_COMPLETE");
  // A late answer from the leaver is stale, never a second reply.
  EXPECT_TRUE(frontend_out(complete(held.empty() ? more[0] : held[0])).empty());
  // DISCONNECT from a stranger changes nothing.
  control("nobody", wire::charon::kDisconnect);
  EXPECT_EQ(r().stats().workers_left, 1u);
}

TEST_F(RouterTest, LateReplyFromALostWorkerWinsAndTheOtherIsDropped) {
  add_worker("A");
  add_worker("B");
  client("c0", photon_request(0));  // keep B busy for now
  auto jb = jobs(last);
  ASSERT_EQ(str(jb.at(0).frames[0]), "A");
  auto ja = jobs(client("c1", photon_request(1)));
  ASSERT_EQ(str(ja.at(0).frames[0]), "B");
  r().on_worker_unreachable("A", now);  // event 0 back to the queue; B busy
  EXPECT_EQ(r().stats().queue_depth, 1u);
  // A was only slow: its reply completes event 0 and takes it off the queue.
  expect_reply(complete(jb[0]), "c0", "SIM_COMPLETE");
  EXPECT_EQ(r().stats().queue_depth, 0u);
  EXPECT_EQ(r().stats().late_replies, 1u);
  EXPECT_TRUE(r().worker("A")) << "a worker that talks is registered again";
}

// --- Deduplication -------------------------------------------------------------

// The reply of a merged request goes to every sender: a RAT-PAC resend
// (fresh REQ socket: same peer, new identity) gets it, and a duplicate sent
// by someone else cannot take it away from the first sender.
static void expect_replies_to(const Outbox& out, std::vector<std::string> clients,
                              std::string_view header) {
  auto f = frontend_out(out);
  ASSERT_EQ(f.size(), clients.size());
  for (std::size_t i = 0; i < f.size(); ++i) {
    EXPECT_EQ(str(f[i].frames[0]), clients[i]);
    EXPECT_EQ(str(f[i].frames[2]), header);
  }
}

TEST_F(RouterTest, ResendOfRunningJobRepliesToEverySender) {
  add_worker("A");
  auto j = jobs(client("c1", photon_request(5)));
  ASSERT_EQ(j.size(), 1u);
  const auto& out = client("c2", photon_request(5));
  EXPECT_TRUE(out.empty()) << "no second simulation, no reply yet";
  client("c2", photon_request(5));  // the same route again: one reply
  expect_replies_to(complete(j[0]), {"c1", "c2"}, "SIM_COMPLETE");
  EXPECT_EQ(r().stats().duplicates, 2u);
  EXPECT_EQ(r().stats().dispatched, 1u);
}

TEST_F(RouterTest, ResendOfQueuedJobRepliesToEverySender) {
  client("c1", photon_request(5));
  client("c2", photon_request(5));
  EXPECT_EQ(r().stats().queue_depth, 1u);
  add_worker("A");
  auto j = jobs(last);
  ASSERT_EQ(j.size(), 1u);
  expect_replies_to(complete(j[0]), {"c1", "c2"}, "SIM_COMPLETE");
}

TEST_F(RouterTest, ManyDuplicatesKeepTheFirstSenderAndABoundedFewOthers) {
  add_worker("A");
  auto j = jobs(client("first", photon_request(5)));
  for (int i = 0; i < 100; ++i) client("dup" + std::to_string(i), photon_request(5));
  auto f = frontend_out(complete(j.at(0)));
  ASSERT_EQ(f.size(), kMaxRoutes);
  EXPECT_EQ(str(f[0].frames[0]), "first");
  EXPECT_EQ(str(f.back().frames[0]), "dup99");
}

TEST_F(RouterTest, ResendOfFinishedJobGetsTheCachedReply) {
  add_worker("A");
  auto j = jobs(client("c1", photon_request(5)));
  const auto first = frontend_out(complete(j.at(0)));
  const auto& out = client("c2", photon_request(5));
  expect_reply(out, "c2", "SIM_COMPLETE");
  EXPECT_TRUE(jobs(out).empty());
  auto again = frontend_out(out);
  ASSERT_EQ(again[0].frames.size(), first.at(0).frames.size());
  for (std::size_t i = 2; i < again[0].frames.size(); ++i) {
    EXPECT_EQ(str(again[0].frames[i]), str(first[0].frames[i])) << "frame " << i;
  }
  EXPECT_EQ(r().stats().cached_replies, 1u);
  // Another host, or other photons, or the same after the window: new jobs.
  EXPECT_EQ(jobs(client("c3", photon_request(5), "10.0.0.8")).size(), 1u);
  complete(jobs(last)[0]);
  EXPECT_EQ(jobs(client("c4", photon_request(5, 4, 0.5f))).size(), 1u);
  complete(jobs(last)[0]);
  run_for(121s, {"A"});
  EXPECT_EQ(jobs(client("c5", photon_request(5))).size(), 1u);
}

TEST_F(RouterTest, ZeroDedupeWindowStillMergesRunningResends) {
  opts.dedupe_window = Duration::zero();
  add_worker("A");
  auto j = jobs(client("c1", photon_request(5)));
  EXPECT_TRUE(client("c2", photon_request(5)).empty());
  expect_replies_to(complete(j.at(0)), {"c1", "c2"}, "SIM_COMPLETE");
  EXPECT_EQ(jobs(client("c3", photon_request(5))).size(), 1u) << "nothing cached";
}

// --- DETECTOR_INFO ---------------------------------------------------------------

TEST_F(RouterTest, DetectorInfoWaitsForTheFirstProbeThenComesFromTheCache) {
  EXPECT_TRUE(client("c1", {text("DETECTOR_INFO")}).empty());
  EXPECT_EQ(r().stats().waiting_detector_info, 1u);
  ready("w1");
  auto p = probes(last);
  ASSERT_EQ(p.size(), 1u);
  const auto det = detector(5);
  const auto& out = worker_reply("w1", p[0].frames[1], wire::charon::encode_detector_info(det));
  expect_reply(out, "c1", "DETECTOR_INFO");
  auto f = frontend_out(out);
  ASSERT_EQ(f[0].frames.size(), 2u + 5u);
  auto decoded =
      wire::charon::decode_detector_info(std::span<const Buffer>(f[0].frames).subspan(2));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, det);
  // Later requests are answered by the broker, without bothering a worker.
  const auto& again = client("c2", {text("DETECTOR_INFO")});
  expect_reply(again, "c2", "DETECTOR_INFO");
  EXPECT_EQ(again.size(), 1u);
  // Even when every worker has gone.
  r().on_worker_unreachable("w1", now);
  now += 1h;
  tick();
  expect_reply(client("c3", {text("DETECTOR_INFO")}), "c3", "DETECTOR_INFO");
}

TEST_F(RouterTest, WorkerWithADifferentDetectorGetsNoJobs) {
  add_worker("A");
  add_worker("B", detector(3, 0.5f));
  EXPECT_EQ(r().worker("B")->state, State::rejected);
  EXPECT_EQ(r().stats().detector_mismatches, 1u);
  add_worker("C", detector(4));
  EXPECT_EQ(r().worker("C")->state, State::rejected);
  add_worker("D");
  EXPECT_EQ(r().worker("D")->state, State::idle);
  auto j1 = jobs(client("c1", photon_request(1)));
  auto j2 = jobs(client("c2", photon_request(2)));
  auto j3 = jobs(client("c3", photon_request(3)));
  EXPECT_EQ(str(j1.at(0).frames[0]), "A");
  EXPECT_EQ(str(j2.at(0).frames[0]), "D");
  EXPECT_TRUE(j3.empty()) << "B and C are idle but serve another detector";
}

TEST_F(RouterTest, MalformedProbeAnswerMeansNoJobs) {
  ready("A");
  worker_reply("A", probes(last).at(0).frames[1], {text("UNKNOWN_REQUEST")});
  EXPECT_EQ(r().worker("A")->state, State::rejected);
  EXPECT_FALSE(r().detector());
  EXPECT_TRUE(client("c1", photon_request(1)).empty());
  add_worker("B");
  EXPECT_EQ(jobs(last).size(), 1u);
}

TEST_F(RouterTest, DetectorInfoGetsNoWorkersWhenNoWorkerComes) {
  EXPECT_TRUE(client("c1", {text("DETECTOR_INFO")}).empty());
  now += 10s;
  expect_reply(tick(), "c1", "NO_WORKERS");
  expect_reply(client("c2", {text("DETECTOR_INFO")}), "c2", "NO_WORKERS");
}

TEST_F(RouterTest, OptionsAreValidated) {
  auto bad = [](auto change) {
    RouterOptions o;
    change(o);
    EXPECT_THROW(o.validate(), SetupError);
  };
  bad([](RouterOptions& o) { o.queue_ttl = Duration::zero(); });
  bad([](RouterOptions& o) { o.heartbeat_interval = Duration::zero(); });
  bad([](RouterOptions& o) { o.heartbeat_liveness = 0; });
  bad([](RouterOptions& o) { o.busy_timeout = Duration::zero(); });
  bad([](RouterOptions& o) { o.max_job_retries = -1; });
  bad([](RouterOptions& o) { o.dedupe_window = -1s; });
  bad([](RouterOptions& o) { o.worker_prefetch = 0; });
  bad([](RouterOptions& o) { o.no_worker_grace = -1s; });
  EXPECT_NO_THROW(RouterOptions{}.validate());
  RouterOptions o;
  o.worker_prefetch = 0;
  EXPECT_THROW({ CharonRouter cr(o, TimePoint{}); }, SetupError);
}

// --- Figures for the HTTP status pages ---------------------------------------

TEST_F(RouterTest, CountsPhotonsInHitsOutAndListsWorkers) {
  add_worker("w1");
  client("c1", photon_request(5, 4));
  auto j = jobs(last);
  ASSERT_EQ(j.size(), 1u);
  now += 20ms;
  expect_reply(complete(j[0]), "c1", "SIM_COMPLETE");
  auto s = r().stats();
  EXPECT_EQ(s.photons_in, 4u);
  EXPECT_EQ(s.hits_out, 4u);  // one hit per photon (sim_complete_for)
  EXPECT_NEAR(s.latency_seconds_sum, 0.020, 1e-9);
  // A resend answered from the cache adds no photons or hits.
  expect_reply(client("c1", photon_request(5, 4)), "c1", "SIM_COMPLETE");
  EXPECT_EQ(r().stats().photons_in, 4u);
  EXPECT_EQ(r().stats().hits_out, 4u);

  client("c2", photon_request(6, 3));
  const auto busy = r().workers(now + 1500ms);
  ASSERT_EQ(busy.size(), 1u);
  EXPECT_EQ(busy[0].id, "w1");
  EXPECT_EQ(busy[0].state, State::busy);
  EXPECT_EQ(busy[0].in_flight, 1u);
  EXPECT_DOUBLE_EQ(busy[0].last_seen_s, 1.5);
  ready("w2");
  const auto both = r().workers(now);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[1].id, "w2");
  EXPECT_EQ(both[1].state, State::probing);
}

}  // namespace
}  // namespace acheron::charon
