// The asynchronous-run policy (AsyncRuns, and CharonRouter through it)
// writing through the RunSink interface into memory: no HDF5, no files. A
// sink that fails (a full disk, as a writer sees it) ends that run with
// RUN_FAILED and the reason, while the other runs go on and are complete.
#include "acheron/charon/RunSink.hh"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "RouterTestUtil.hh"
#include "acheron/charon/AsyncRuns.hh"
#include "acheron/charon/CharonRouter.hh"
#include "acheron/core/Error.hh"

namespace acheron::charon {
namespace {
using namespace std::chrono_literals;
using namespace testutil;
namespace fs = std::filesystem;

constexpr std::string_view kDiskFull = "No space left on device";

// What the memory sink holds for one run.
struct MemoryRun {
  std::vector<wire::charon::Hits> events;
  std::size_t baskets = 0;
  bool closed = false;
  bool abandoned = false;
};

struct MemoryStore {
  std::map<std::string, MemoryRun> runs;  // by requested name
  std::set<std::string> refuse;           // begin_run throws for these names
  // Runs whose writer throws once it holds this many events (a disk that
  // fills up part way through).
  std::map<std::string, std::size_t> fill_after;
  std::size_t writers = 0;
};

class MemoryWriter final : public RunWriter {
 public:
  MemoryWriter(std::shared_ptr<MemoryStore> store, std::string name)
      : store_(std::move(store)), name_(std::move(name)), path_("memory:" + name_) {}

  void append(const std::vector<wire::charon::Hits>& events) override {
    MemoryRun& run = store_->runs[name_];
    EXPECT_FALSE(run.closed || run.abandoned) << "append after the end of " << name_;
    if (auto it = store_->fill_after.find(name_);
        it != store_->fill_after.end() && run.events.size() + events.size() > it->second) {
      throw std::runtime_error("cannot write run " + name_ + ": " + std::string(kDiskFull));
    }
    run.events.insert(run.events.end(), events.begin(), events.end());
    ++run.baskets;
    for (const auto& e : events) hits_ += e.channel.size();
  }
  void close() override {
    MemoryRun& run = store_->runs[name_];
    EXPECT_FALSE(run.closed || run.abandoned) << "close after the end of " << name_;
    run.closed = true;
  }
  void abandon() noexcept override { store_->runs[name_].abandoned = true; }
  const fs::path& path() const noexcept override { return path_; }
  std::uint64_t events() const noexcept override { return store_->runs[name_].events.size(); }
  std::uint64_t hits() const noexcept override { return hits_; }

 private:
  std::shared_ptr<MemoryStore> store_;
  std::string name_;
  fs::path path_;
  std::uint64_t hits_ = 0;
};

class MemorySink final : public RunSink {
 public:
  explicit MemorySink(std::shared_ptr<MemoryStore> store) : store_(std::move(store)) {}

  std::unique_ptr<RunWriter> begin_run(const std::string& name,
                                       const wire::charon::DetectorInfo& detector) override {
    EXPECT_EQ(detector.size(), testutil::detector().size()) << "the run's detector is passed on";
    if (store_->refuse.count(name)) {
      throw std::runtime_error("cannot create run " + name + ": " + std::string(kDiskFull));
    }
    ++store_->writers;
    store_->runs[name];  // a fresh entry
    return std::make_unique<MemoryWriter>(store_, name);
  }
  fs::path path_for(const std::string& name) const override { return "memory:" + name; }

 private:
  std::shared_ptr<MemoryStore> store_;
};

wire::charon::Hits hits_of(std::uint32_t event_id, std::size_t n) {
  wire::charon::Hits h;
  h.event_id = event_id;
  for (std::size_t i = 0; i < n; ++i) {
    h.channel.push_back(static_cast<std::uint32_t>(i));
    for (auto* v :
         {&h.dir_x, &h.dir_y, &h.dir_z, &h.pol_x, &h.pol_y, &h.pol_z, &h.wavelength, &h.time}) {
      v->push_back(1.0f);
    }
    h.flags.push_back(4);
  }
  return h;
}

std::vector<std::uint32_t> event_ids(const MemoryRun& run) {
  std::vector<std::uint32_t> ids;
  for (const auto& e : run.events) ids.push_back(e.event_id);
  return ids;
}

// A directory that must never be created: the memory sink replaces the files.
fs::path unused_outdir() {
  return fs::temp_directory_path() / ("acheron_run_sink_unused_" + std::to_string(::getpid()));
}

TEST(RunSink, AsyncRunsWriteEveryRunThroughTheSinkInSubmissionOrder) {
  auto store = std::make_shared<MemoryStore>();
  AsyncOptions o;
  o.outdir = unused_outdir();
  o.events_per_basket = 2;
  o.sink = std::make_shared<MemorySink>(store);
  AsyncRuns runs(o, detector());
  EXPECT_EQ(runs.begin("a", "first.root"), fs::path("memory:first.root"));
  const auto t0 = runs.accept("a", 10);
  const auto t1 = runs.accept("a", 10);
  const auto t2 = runs.accept("a", 10);
  EXPECT_TRUE(runs.complete(t2, hits_of(2, 3)).empty());
  EXPECT_TRUE(runs.complete(t1, hits_of(1, 2)).empty());
  EXPECT_TRUE(store->runs.at("first.root").events.empty()) << "event 0 is still missing";
  EXPECT_TRUE(runs.complete(t0, hits_of(0, 1)).empty());
  EXPECT_EQ(event_ids(store->runs.at("first.root")), (std::vector<std::uint32_t>{0, 1, 2}));
  EXPECT_FALSE(store->runs.at("first.root").closed);
  const auto reply = runs.end("a", {});
  ASSERT_TRUE(reply.has_value()) << "nothing pending: RUN_END is answered at once";
  EXPECT_EQ(test_support::str((*reply)[0]), wire::charon::kAck);
  EXPECT_TRUE(store->runs.at("first.root").closed);
  ASSERT_EQ(runs.closed_runs().size(), 1u);
  EXPECT_EQ(runs.closed_runs()[0].path, fs::path("memory:first.root"));
  EXPECT_EQ(runs.closed_runs()[0].events, 3u);
  EXPECT_EQ(runs.closed_runs()[0].hits, 6u);
  EXPECT_FALSE(fs::exists(o.outdir)) << "a given sink leaves outdir alone";
}

TEST(RunSink, AFailingWriterEndsOnlyItsRunWithRunFailedAndTheReason) {
  auto store = std::make_shared<MemoryStore>();
  store->fill_after["doomed.root"] = 1;  // the second basket does not fit
  AsyncOptions o;
  o.outdir = unused_outdir();
  o.events_per_basket = 1;
  o.sink = std::make_shared<MemorySink>(store);
  AsyncRuns runs(o, detector());
  runs.begin("p", "doomed.root");
  runs.begin("q", "kept.root");
  for (std::uint32_t e = 0; e < 4; ++e) {
    EXPECT_TRUE(runs.complete(runs.accept("p", 5), hits_of(e, 2)).empty());
    EXPECT_TRUE(runs.complete(runs.accept("q", 5), hits_of(100 + e, 1)).empty());
  }
  EXPECT_EQ(runs.failed_runs(), 1u);
  EXPECT_TRUE(store->runs.at("doomed.root").abandoned) << "the failed run's output is dropped";
  EXPECT_FALSE(store->runs.at("doomed.root").closed);
  EXPECT_EQ(event_ids(store->runs.at("doomed.root")), (std::vector<std::uint32_t>{0}))
      << "nothing is written to a run after its error";
  const auto failed = runs.end("p", {});
  ASSERT_TRUE(failed.has_value());
  ASSERT_EQ(failed->size(), 2u);
  EXPECT_EQ(test_support::str((*failed)[0]), wire::charon::kRunFailed);
  EXPECT_NE(test_support::str((*failed)[1]).find(kDiskFull), std::string::npos)
      << test_support::str((*failed)[1]);
  const auto kept = runs.end("q", {});
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(test_support::str((*kept)[0]), wire::charon::kAck);
  EXPECT_TRUE(store->runs.at("kept.root").closed);
  EXPECT_EQ(event_ids(store->runs.at("kept.root")),
            (std::vector<std::uint32_t>{100, 101, 102, 103}));
  ASSERT_EQ(runs.closed_runs().size(), 1u) << "only the complete run is listed as closed";
  EXPECT_EQ(runs.backlog_photons(), 0u);
}

TEST(RunSink, ARunTheSinkCannotBeginTakesItsEventsAndEndsWithRunFailed) {
  auto store = std::make_shared<MemoryStore>();
  store->refuse.insert("nowhere.root");
  AsyncOptions o;
  o.outdir = unused_outdir();
  o.sink = std::make_shared<MemorySink>(store);
  AsyncRuns runs(o, detector());
  EXPECT_EQ(runs.begin("p", "nowhere.root"), fs::path("memory:nowhere.root"));
  EXPECT_EQ(runs.failed_runs(), 1u);
  EXPECT_TRUE(runs.complete(runs.accept("p", 5), hits_of(1, 2)).empty());  // dropped
  const auto reply = runs.end("p", {});
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(reply->size(), 2u);
  EXPECT_EQ(test_support::str((*reply)[0]), wire::charon::kRunFailed);
  EXPECT_NE(test_support::str((*reply)[1]).find("cannot create run nowhere.root"),
            std::string::npos);
  // The peer's next run is written again.
  runs.begin("p", "next.root");
  runs.complete(runs.accept("p", 5), hits_of(2, 1));
  EXPECT_EQ(test_support::str((*runs.end("p", {}))[0]), wire::charon::kAck);
  EXPECT_EQ(event_ids(store->runs.at("next.root")), (std::vector<std::uint32_t>{2}));
  EXPECT_EQ(store->runs.count("nowhere.root"), 0u);
}

// The router in asynchronous mode, two clients on two hosts, one worker:
// the client whose run cannot be written gets RUN_FAILED with the reason for
// its RUN_END; the other's run is complete and gets ACK.
class RouterSinkTest : public ::testing::Test, protected RouterDriver {
 protected:
  std::shared_ptr<MemoryStore> store = std::make_shared<MemoryStore>();

  RouterSinkTest() {
    opts.async = true;
    opts.async_options.outdir = unused_outdir();
    opts.async_options.events_per_basket = 1;
    opts.async_options.sink = std::make_shared<MemorySink>(store);
    opts.photons_per_batch = 0;  // one job per worker at a time
  }
  // Completes every job the last call dispatched, and the jobs that frees.
  void work_off() {
    for (auto j = jobs(last); !j.empty(); j = jobs(last)) {
      const std::span<const Buffer> body(j[0].frames.data() + 3, j[0].frames.size() - 3);
      worker_reply(str(j[0].frames[0]), j[0].frames[1], sim_complete_for(body));
    }
  }
  // The one frontend reply of the last call, to `id`.
  std::vector<Buffer> reply_to(std::string_view id) {
    const auto f = frontend_out(last);
    EXPECT_EQ(f.size(), 1u);
    if (f.size() != 1) return {};
    EXPECT_EQ(str(f[0].frames[0]), id);
    return {f[0].frames.begin() + 2, f[0].frames.end()};  // after [id, ""]
  }
};

TEST_F(RouterSinkTest, AFullDiskFailsThatClientsRunWhileTheOtherRunCompletes) {
  store->fill_after["doomed.root"] = 1;
  add_worker("w1");
  client("a", "10.0.0.1", wire::charon::encode_run_begin("doomed.root"));
  EXPECT_EQ(str(reply_to("a").at(0)), wire::charon::kAck);
  client("b", "10.0.0.2", wire::charon::encode_run_begin("kept.root"));
  EXPECT_EQ(str(reply_to("b").at(0)), wire::charon::kAck);
  for (std::uint32_t e = 0; e < 3; ++e) {
    client("a", "10.0.0.1", photon_request(e, 4));
    EXPECT_EQ(str(reply_to("a").at(0)), wire::charon::kSimCompleteAsync);
    work_off();
    client("b", "10.0.0.2", photon_request(50 + e, 2));
    EXPECT_EQ(str(reply_to("b").at(0)), wire::charon::kSimCompleteAsync);
    work_off();
  }
  EXPECT_EQ(r().stats().async_written, 6u);

  client("a", "10.0.0.1", wire::charon::encode_header(wire::charon::kRunEnd));
  const auto failed = reply_to("a");
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_EQ(str(failed[0]), wire::charon::kRunFailed);
  EXPECT_NE(str(failed[1]).find(kDiskFull), std::string::npos) << str(failed[1]);
  EXPECT_TRUE(store->runs.at("doomed.root").abandoned);

  client("b", "10.0.0.2", wire::charon::encode_header(wire::charon::kRunEnd));
  const auto kept = reply_to("b");
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(str(kept[0]), wire::charon::kAck);
  const MemoryRun& run = store->runs.at("kept.root");
  EXPECT_TRUE(run.closed);
  EXPECT_EQ(event_ids(run), (std::vector<std::uint32_t>{50, 51, 52}));
  EXPECT_EQ(run.events.at(1).channel, (std::vector<std::uint32_t>{51, 52}))
      << "the worker's hits reach the sink as they were";
  EXPECT_EQ(r().open_runs(), 0u);
  EXPECT_FALSE(fs::exists(opts.async_options.outdir)) << "no files: the sink replaces them";

  // The failed client's next run is written again.
  client("a", "10.0.0.1", wire::charon::encode_run_begin("again.root"));
  client("a", "10.0.0.1", photon_request(9, 1));
  work_off();
  client("a", "10.0.0.1", wire::charon::encode_header(wire::charon::kRunEnd));
  EXPECT_EQ(str(reply_to("a").at(0)), wire::charon::kAck);
  EXPECT_EQ(event_ids(store->runs.at("again.root")), (std::vector<std::uint32_t>{9}));
}

TEST_F(RouterSinkTest, TheRouterNeedsNoOutputDirectoryWithASink) {
  opts.async_options.outdir.clear();  // invalid for the default sink, unused with this one
  EXPECT_NO_THROW(r());
  RouterOptions files = opts;
  files.async_options.sink = nullptr;
  try {
    files.validate();
    FAIL() << "an empty outdir must be refused for the default (file) sink";
  } catch (const SetupError& e) {
    EXPECT_NE(std::string(e.what()).find("--outdir"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace acheron::charon
