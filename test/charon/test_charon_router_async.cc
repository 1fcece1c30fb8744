// The broker's asynchronous mode (charon-protocol.md §11) without sockets, on
// a fake clock with fake workers: ASYNC replies at once, resends deduplicated,
// results written in submission order, RUN_END held until the run is closed,
// failed events written empty, and the backlog holding replies back.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "RouterTestUtil.hh"
#include "RunFileTestUtil.hh"
#include "acheron/charon/CharonRouter.hh"
#include "acheron/charon/RunFileReader.hh"
#include "acheron/core/Error.hh"

namespace acheron::charon {
namespace {
using namespace std::chrono_literals;
using namespace testutil;
namespace fs = std::filesystem;

constexpr std::string_view kPeer = "10.0.0.7";

class AsyncRouterTest : public ::testing::Test, protected RouterDriver {
 protected:
  TempDir dir;
  fs::path outdir = dir.path;

  AsyncRouterTest() {
    opts.async = true;
    opts.async_options.outdir = outdir;
    opts.async_options.events_per_basket = 2;
    opts.photons_per_batch = 0;  // one job per worker unless a test packs
  }
  ~AsyncRouterTest() override { router.reset(); }  // closes its files before `dir` goes

  using RouterDriver::client;
  const Outbox& client(std::string_view id, std::vector<Buffer> body) {
    return client(id, kPeer, std::move(body));
  }
  void unreachable(std::string_view id) { last = r().on_worker_unreachable(id, now); }

  static std::vector<Outgoing> replies(const Outbox& out) { return frontend_out(out); }
  // The worker's SIM_COMPLETE for a dispatched job (one hit per photon).
  const Outbox& complete(const Outgoing& job) {
    const std::span<const Buffer> body(job.frames.data() + 3, job.frames.size() - 3);
    return worker_reply(str(job.frames[0]), job.frames[1], sim_complete_for(body));
  }
  // Exactly one frontend reply, to `client`: [client, "", header, ...].
  static Outgoing expect_reply(const Outbox& out, std::string_view client,
                               std::string_view header) {
    auto f = replies(out);
    EXPECT_EQ(f.size(), 1u) << "expected one reply " << header;
    if (f.size() != 1 || f[0].frames.size() < 3) return {};
    EXPECT_EQ(str(f[0].frames[0]), client);
    EXPECT_EQ(str(f[0].frames[2]), header);
    return f[0];
  }
  static void expect_async(const Outbox& out, std::string_view client, std::uint32_t event) {
    auto o = expect_reply(out, client, wire::charon::kSimCompleteAsync);
    ASSERT_EQ(o.frames.size(), 4u) << "SIM_COMPLETE_ASYNC has exactly 2 frames";
    EXPECT_EQ(u32(o.frames[3]), event);
  }
  fs::path run_file(std::string_view name) const { return outdir / name; }
};

TEST_F(AsyncRouterTest, EventIsAnsweredAtOnceAndAResendAddsNoEntry) {
  add_worker("w1");
  expect_reply(client("c1", wire::charon::encode_run_begin("out/run1.root")), "c1",
               wire::charon::kAck);
  const auto& out = client("c1", photon_request(7, 4));
  expect_async(out, "c1", 7);
  auto j = jobs(out);
  ASSERT_EQ(j.size(), 1u) << "the accepted event goes to a worker as an ordinary job";
  // RAT-PAC's resend on a fresh socket, before and after the result.
  expect_async(client("c1b", photon_request(7, 4)), "c1b", 7);
  EXPECT_TRUE(jobs(last).empty());
  EXPECT_TRUE(replies(complete(j[0])).empty()) << "a worker's result goes to the run only";
  expect_async(client("c1c", photon_request(7, 4)), "c1c", 7);
  EXPECT_TRUE(jobs(last).empty());
  expect_reply(client("c1", wire::charon::encode_header(wire::charon::kRunEnd)), "c1",
               wire::charon::kAck);
  EXPECT_EQ(r().stats().async_accepted, 1u);
  EXPECT_EQ(r().stats().duplicates, 2u);
  EXPECT_EQ(read_u32(run_file("run1.charon.h5"), "/output/event_id"),
            (std::vector<std::uint32_t>{7}));
  EXPECT_EQ(read_u32(run_file("run1.charon.h5"), "/output/nchannel_id"),
            (std::vector<std::uint32_t>{4}));
}

TEST_F(AsyncRouterTest, WorkersAreGivenWholeEventsUpToTheBatchSize) {
  opts.photons_per_batch = 10;
  add_worker("w1");
  add_worker("w2");
  client("c", wire::charon::encode_run_begin("packed.root"));
  std::vector<Outgoing> sent;
  for (std::uint32_t e = 0; e < 5; ++e) {
    const auto& out = client("c", photon_request(e, 4));
    expect_async(out, "c", e);
    for (auto& j : jobs(out)) sent.push_back(j);
  }
  // Least loaded first: w1 e0, w2 e1, w1 e2 (8 photons), w2 e3 (8); e4
  // would bring either to 12 > 10 and waits.
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_EQ(str(sent[0].frames[0]), str(sent[2].frames[0]));
  EXPECT_EQ(str(sent[1].frames[0]), str(sent[3].frames[0]));
  EXPECT_NE(str(sent[0].frames[0]), str(sent[1].frames[0]));
  auto fifth = jobs(complete(sent[0]));
  ASSERT_EQ(fifth.size(), 1u) << "room again once 4 photons are done";
  EXPECT_EQ(str(fifth[0].frames[0]), str(sent[0].frames[0]));
  // An event larger than the batch size still runs (alone on an idle worker).
  for (std::size_t i = 1; i < sent.size(); ++i) complete(sent[i]);
  complete(fifth[0]);
  const auto& big = client("c", photon_request(9, 25));
  expect_async(big, "c", 9);
  auto j = jobs(big);
  ASSERT_EQ(j.size(), 1u);
  complete(j[0]);
  expect_reply(client("c", wire::charon::encode_header(wire::charon::kRunEnd)), "c",
               wire::charon::kAck);
  EXPECT_EQ(read_u32(run_file("packed.charon.h5"), "/output/event_id"),
            (std::vector<std::uint32_t>{0, 1, 2, 3, 4, 9}));
}

TEST_F(AsyncRouterTest, ResultsOutOfOrderAreWrittenInSubmissionOrderAndRunEndWaits) {
  add_worker("w1");
  add_worker("w2");
  client("c", wire::charon::encode_run_begin("ordered.root"));
  std::vector<Outgoing> sent;
  for (std::uint32_t e = 0; e < 3; ++e) {
    const auto& out = client("c", photon_request(e, 4 + e));
    expect_async(out, "c", e);
    for (auto& j : jobs(out)) sent.push_back(j);
  }
  ASSERT_EQ(sent.size(), 2u) << "two workers, one job each; the third event queues";
  // Event 1 finishes first; its worker then gets event 2, which finishes too.
  const auto& after1 = complete(sent[1]);
  auto third = jobs(after1);
  ASSERT_EQ(third.size(), 1u);
  complete(third[0]);
  // RUN_END and its resend wait for event 0.
  EXPECT_TRUE(replies(client("c", wire::charon::encode_header(wire::charon::kRunEnd))).empty());
  EXPECT_TRUE(replies(client("c2", wire::charon::encode_header(wire::charon::kRunEnd))).empty());
  EXPECT_FALSE(fs::exists(run_file("ordered.charon.h5"))) << "not renamed before the close";
  const auto acks = replies(complete(sent[0]));
  ASSERT_EQ(acks.size(), 2u) << "both RUN_ENDs are answered once the file is closed";
  for (const auto& a : acks) EXPECT_EQ(str(a.frames[2]), wire::charon::kAck);
  EXPECT_EQ(read_u32(run_file("ordered.charon.h5"), "/output/event_id"),
            (std::vector<std::uint32_t>{0, 1, 2}));
  EXPECT_EQ(read_u32(run_file("ordered.charon.h5"), "/output/nchannel_id"),
            (std::vector<std::uint32_t>{4, 5, 6}));
  EXPECT_EQ(r().open_runs(), 0u);
  // A resend after the close is answered at once.
  expect_reply(client("c3", wire::charon::encode_header(wire::charon::kRunEnd)), "c3",
               wire::charon::kAck);
}

TEST_F(AsyncRouterTest, RetriesExhaustedGiveAnEmptyEntryAndTheRunCloses) {
  opts.max_job_retries = 1;
  add_worker("w0");
  client("c", wire::charon::encode_run_begin("failing.root"));
  expect_async(client("c", photon_request(5, 4)), "c", 5);
  unreachable("w0");
  add_worker("w1");
  ASSERT_EQ(jobs(last).size(), 1u) << "the retry goes to the new worker";
  unreachable("w1");
  EXPECT_TRUE(replies(last).empty()) << "the client was answered already: no SIM_FAILED";
  EXPECT_EQ(r().stats().failed, 1u);
  EXPECT_EQ(r().stats().async_empty, 1u);
  EXPECT_EQ(r().async_backlog_photons(), 0u);
  // A worker's own SIM_FAILED gives an empty entry too.
  add_worker("w2");
  auto j = jobs(client("c", photon_request(6, 4)));
  ASSERT_EQ(j.size(), 1u);
  worker_reply("w2", j[0].frames[1], wire::charon::encode_sim_failed(6));
  EXPECT_TRUE(replies(last).empty());
  expect_reply(client("c", wire::charon::encode_header(wire::charon::kRunEnd)), "c",
               wire::charon::kAck);
  EXPECT_EQ(read_u32(run_file("failing.charon.h5"), "/output/event_id"),
            (std::vector<std::uint32_t>{5, 6}));
  EXPECT_EQ(read_u32(run_file("failing.charon.h5"), "/output/nchannel_id"),
            (std::vector<std::uint32_t>{0, 0}));
}

TEST_F(AsyncRouterTest, ReplyIsHeldWhileTheBacklogIsOverItsLimit) {
  opts.async_options.max_backlog_photons = 5;
  add_worker("w1");
  const auto j0 = jobs(client("c", photon_request(0, 4)));
  expect_async(last, "c", 0);
  ASSERT_EQ(j0.size(), 1u);
  EXPECT_TRUE(replies(client("c", photon_request(1, 4))).empty()) << "8 photons waiting > 5";
  EXPECT_TRUE(replies(client("cb", photon_request(1, 4))).empty()) << "the resend waits too";
  EXPECT_EQ(r().stats().async_accepted, 2u) << "the resend is no new event";
  // Event 0 done: 4 photons waiting, the held reply goes to both sockets.
  const auto& out = complete(j0[0]);
  const auto held = replies(out);
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(str(held[0].frames[0]), "c");
  EXPECT_EQ(str(held[1].frames[0]), "cb");
  for (const auto& h : held) {
    EXPECT_EQ(str(h.frames[2]), wire::charon::kSimCompleteAsync);
    EXPECT_EQ(u32(h.frames[3]), 1u);
  }
  ASSERT_EQ(jobs(out).size(), 1u);
  complete(jobs(out)[0]);
  expect_reply(client("c", wire::charon::encode_header(wire::charon::kRunEnd)), "c",
               wire::charon::kAck);
  // Events without a RUN_BEGIN go to a run with a generated name.
  std::size_t files = 0;
  for (const auto& f : fs::directory_iterator(outdir)) {
    ++files;
    EXPECT_EQ(read_u32(f.path(), "/output/event_id"), (std::vector<std::uint32_t>{0, 1}));
  }
  EXPECT_EQ(files, 1u);
}

TEST_F(AsyncRouterTest, RunBeginBeforeTheFirstWorkerWaitsForTheDetector) {
  expect_reply(client("c", wire::charon::encode_run_begin("early.root")), "c", wire::charon::kAck);
  // No detector yet, so no file can hold the event: "retry later".
  expect_reply(client("c", photon_request(1, 4)), "c", wire::charon::kNoWorkers);
  add_worker("w1");
  const auto j = jobs(client("c", photon_request(1, 4)));
  expect_async(last, "c", 1);
  ASSERT_EQ(j.size(), 1u);
  complete(j[0]);
  expect_reply(client("c", wire::charon::encode_header(wire::charon::kRunEnd)), "c",
               wire::charon::kAck);
  EXPECT_EQ(read_u32(run_file("early.charon.h5"), "/output/event_id"),
            (std::vector<std::uint32_t>{1}));
}

TEST_F(AsyncRouterTest, AcceptedEventsNeitherExpireNorGetNoWorkers) {
  opts.no_worker_grace = 2s;
  add_worker("w1");
  client("c", wire::charon::encode_run_begin("kept.root"));
  expect_async(client("c", photon_request(1, 4)), "c", 1);
  unreachable("w1");               // last retry left: the job goes back to the queue
  for (int i = 0; i < 200; ++i) {  // 100 s: beyond queue_ttl and the grace
    now += 500ms;
    last = r().on_tick(now);
    ASSERT_TRUE(replies(last).empty());
  }
  EXPECT_EQ(r().stats().queue_depth, 1u);
  add_worker("w2");
  auto j = jobs(last);
  ASSERT_EQ(j.size(), 1u) << "the next worker simulates it";
  complete(j[0]);
  expect_reply(client("c", wire::charon::encode_header(wire::charon::kRunEnd)), "c",
               wire::charon::kAck);
  EXPECT_EQ(read_u32(run_file("kept.charon.h5"), "/output/event_id"),
            (std::vector<std::uint32_t>{1}));
}

TEST_F(AsyncRouterTest, CloseRunsWritesWhatHasCompleted) {
  add_worker("w1");
  client("c", wire::charon::encode_run_begin("cut.root"));
  const auto j = jobs(client("c", photon_request(1, 4)));
  ASSERT_EQ(j.size(), 1u);
  complete(j[0]);
  client("c", photon_request(2, 4));  // never finishes
  r().close_runs();
  EXPECT_EQ(read_u32(run_file("cut.charon.h5"), "/output/event_id"),
            (std::vector<std::uint32_t>{1}));
}

TEST_F(AsyncRouterTest, OptionsAreValidated) {
  opts.async_options.events_per_basket = 0;
  EXPECT_THROW(opts.validate(), SetupError);
}

// The STEPS extension: async jobs ask for it in their slot; a worker of
// this project appends the frame and the run file gets the step data; an
// original worker does not, and its hits are written without.
wire::charon::HitSteps steps_for(std::size_t n) {
  wire::charon::HitSteps s;
  s.history_length = 4;
  for (std::size_t i = 0; i < n; ++i) {
    s.pos_x.push_back(float(i));
    s.pos_y.push_back(2.0f);
    s.pos_z.push_back(3.0f);
    s.boundaries.push_back(static_cast<std::uint32_t>(i + 1));
    s.scatters.push_back(1);
    s.reemissions.push_back(0);
    s.steps.push_back(static_cast<std::uint32_t>(i + 2));
    s.sequence.push_back(0x613 + i);
  }
  return s;
}

TEST_F(AsyncRouterTest, AsyncJobsAskForStepsAndTheStepsFrameReachesTheRunFile) {
  add_worker("w1");
  client("c", wire::charon::encode_run_begin("steps.root"));
  auto j = jobs(client("c", photon_request(5, 3)));
  ASSERT_EQ(j.size(), 1u);
  EXPECT_TRUE(wire::charon::slot_wants_steps(j[0].frames[1]));
  const std::span<const Buffer> body(j[0].frames.data() + 3, j[0].frames.size() - 3);
  auto reply = sim_complete_for(body);
  reply.push_back(wire::charon::encode_hit_steps(steps_for(3)));
  worker_reply("w1", j[0].frames[1], reply);
  expect_reply(client("c", wire::charon::encode_header(wire::charon::kRunEnd)), "c",
               wire::charon::kAck);
  const auto run = read_run_file(run_file("steps.charon.h5"));
  ASSERT_EQ(run.events.size(), 1u);
  ASSERT_TRUE(run.events[0].steps);
  EXPECT_EQ(run.events[0].steps->history_length, 4u);
  EXPECT_EQ(run.events[0].steps->boundaries, (std::vector<std::uint32_t>{1, 2, 3}));
  EXPECT_EQ(run.events[0].steps->sequence, (std::vector<std::uint64_t>{0x613, 0x614, 0x615}));
  EXPECT_EQ(run.events[0].channel, (std::vector<std::uint32_t>{5, 6, 7}));
  EXPECT_EQ(r().stats().bad_backend_messages, 0u);
}

TEST_F(AsyncRouterTest, AnOriginalWorkersRepliesAreWrittenWithoutSteps) {
  add_worker("w1");
  client("c", wire::charon::encode_run_begin("plain.root"));
  auto j = jobs(client("c", photon_request(5, 3)));
  ASSERT_EQ(j.size(), 1u);
  complete(j[0]);  // echoes the slot, no STEPS frame
  auto j2 = jobs(client("c", photon_request(6, 2)));
  ASSERT_EQ(j2.size(), 1u);
  // A STEPS frame that does not match the reply is dropped with a warning.
  const std::span<const Buffer> body(j2[0].frames.data() + 3, j2[0].frames.size() - 3);
  auto reply = sim_complete_for(body);
  reply.push_back(wire::charon::encode_hit_steps(steps_for(5)));
  worker_reply("w1", j2[0].frames[1], reply);
  expect_reply(client("c", wire::charon::encode_header(wire::charon::kRunEnd)), "c",
               wire::charon::kAck);
  const auto run = read_run_file(run_file("plain.charon.h5"));
  ASSERT_EQ(run.events.size(), 2u);
  EXPECT_FALSE(run.events[0].steps);
  EXPECT_EQ(run.events[0].size(), 3u);
  EXPECT_FALSE(run.events[1].steps);
  EXPECT_EQ(run.events[1].size(), 2u);
  EXPECT_EQ(r().stats().bad_backend_messages, 1u);
}

TEST_F(AsyncRouterTest, SynchronousJobsDoNotAskForSteps) {
  opts.async = false;
  add_worker("w1");
  auto j = jobs(client("c", photon_request(5, 3)));
  ASSERT_EQ(j.size(), 1u);
  EXPECT_FALSE(wire::charon::slot_wants_steps(j[0].frames[1]));
  EXPECT_EQ(j[0].frames[1].size(), 9u);
}

}  // namespace
}  // namespace acheron::charon
