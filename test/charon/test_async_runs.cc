// Asynchronous-mode runs: file naming, submission order, baskets, RUN_END
// waiting for the last event, resends, a second RUN_BEGIN, shutdown.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>

#include <filesystem>
#include <fstream>

#include "acheron/charon/AsyncRuns.hh"
#include "acheron/charon/RunFile.hh"
#include "acheron/core/Error.hh"

#include "RunFileTestUtil.hh"
#include "TestBytes.hh"

namespace acheron::charon {
namespace {

namespace fs = std::filesystem;
using test_support::str;
using testutil::read_u32;
using testutil::TempDir;
using wire::charon::Hits;

Hits hits(std::uint32_t event_id, std::size_t n) {
  Hits h;
  h.event_id = event_id;
  for (std::size_t i = 0; i < n; ++i) {
    h.channel.push_back(static_cast<std::uint32_t>(i));
    for (auto* v :
         {&h.dir_x, &h.dir_y, &h.dir_z, &h.pol_x, &h.pol_y, &h.pol_z, &h.wavelength, &h.time}) {
      v->push_back(static_cast<float>(event_id));
    }
    h.flags.push_back(4);
  }
  return h;
}

wire::charon::DetectorInfo detector() {
  return {{1, 2}, {3, 4}, {5, 6}, {0, 1}};
}

TEST(RunFileName, StripsDirectoriesAndRootSuffixes) {
  EXPECT_EQ(run_file_name("out/sim_7.root"), "sim_7.charon.h5");
  EXPECT_EQ(run_file_name("/abs/path/x.ntuple.root.root"), "x.charon.h5");
  EXPECT_EQ(run_file_name("../../etc/passwd"), "passwd.charon.h5");
  EXPECT_EQ(run_file_name("plain"), "plain.charon.h5");
  const auto gen = run_file_name("");
  EXPECT_EQ(gen.rfind("run_", 0), 0u);
  EXPECT_NE(gen, run_file_name(""));  // generated names are unique
}

// "important.dat\0" used to become the path "important.dat" at the system
// call and truncate that file. Names keep a safe character set.
TEST(RunFileName, OnlySafeCharactersSurvive) {
  EXPECT_EQ(run_file_name(std::string("important.dat\0", 14)), "important.dat_.charon.h5");
  EXPECT_EQ(run_file_name("a b;c|d$(x)`\n"), "a_b_c_d__x___.charon.h5");
  EXPECT_EQ(run_file_name(".hidden.root"), "hidden.charon.h5");
  EXPECT_EQ(run_file_name("..").rfind("run_", 0), 0u);
  EXPECT_EQ(run_file_name(std::string(1000, 'x')), std::string(128, 'x') + ".charon.h5");
  EXPECT_EQ(run_file_name("r\xc3\xa9sum\xc3\xa9"), "r__sum__.charon.h5");
}

TEST(AsyncRuns, ANameWithANulNeverTouchesTheFileItNames) {
  TempDir dir;
  fs::create_directories(dir.path);
  const auto victim = dir.path / "important.dat";
  { std::ofstream(victim) << "precious"; }
  ASSERT_EQ(fs::file_size(victim), 8u);
  AsyncRuns runs({.outdir = dir.path, .events_per_basket = 1}, detector());
  const auto path = runs.begin("10.0.0.1", std::string("important.dat\0", 14));
  EXPECT_EQ(path.filename(), "important.dat_.charon.h5");
  runs.complete(runs.accept("10.0.0.1", 10), hits(0, 1));
  runs.end("10.0.0.1", {});
  std::ifstream in(victim);
  std::string text;
  in >> text;
  EXPECT_EQ(text, "precious");
  EXPECT_TRUE(fs::exists(path));
}

// A repeated run name gets a new file; earlier results are never replaced,
// not even one created while the run was being written.
TEST(AsyncRuns, ReusedRunNamesNeverOverwriteEarlierFiles) {
  TempDir dir;
  AsyncRuns runs({.outdir = dir.path, .events_per_basket = 1}, detector());
  std::vector<fs::path> paths;
  for (int i = 0; i < 3; ++i) {
    paths.push_back(runs.begin("10.0.0.1", "sim.root"));
    runs.complete(runs.accept("10.0.0.1", 10), hits(static_cast<std::uint32_t>(i), i + 1));
    runs.end("10.0.0.1", {});
  }
  EXPECT_EQ(paths[0].filename(), "sim.charon.h5");
  EXPECT_EQ(paths[1].filename(), "sim-1.charon.h5");
  EXPECT_EQ(paths[2].filename(), "sim-2.charon.h5");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(read_u32(paths[i], "/output/event_id"),
              (std::vector<std::uint32_t>{static_cast<std::uint32_t>(i)}));
  }
  // Someone creates the final name while a run is open: the run lands beside it.
  const auto open_path = runs.begin("10.0.0.2", "late");
  EXPECT_EQ(open_path.filename(), "late.charon.h5");
  { std::ofstream(dir.path / "late.charon.h5") << "someone else's"; }
  runs.complete(runs.accept("10.0.0.2", 10), hits(9, 1));
  runs.end("10.0.0.2", {});
  EXPECT_TRUE(fs::exists(dir.path / "late-1.charon.h5"));
  std::ifstream in(dir.path / "late.charon.h5");
  std::string first;
  in >> first;
  EXPECT_EQ(first, "someone");
}

std::string header_of(const std::optional<std::vector<Buffer>>& reply) {
  if (!reply || reply->empty()) return "";
  return str(reply->front());
}

// A run whose file cannot be created (the output directory vanished) is
// given up: its events are taken and dropped, RUN_END says RUN_FAILED with
// the reason, and the next run works again.
TEST(AsyncRuns, ARunThatCannotBeCreatedEndsWithRunFailed) {
  TempDir dir;
  AsyncRuns runs({.outdir = dir.path, .events_per_basket = 1}, detector());
  fs::remove_all(dir.path);
  runs.begin("p", "lost.root");
  EXPECT_TRUE(runs.complete(runs.accept("p", 10), hits(0, 2)).empty());
  const auto reply = runs.end("p", {});
  ASSERT_TRUE(reply);
  EXPECT_EQ(header_of(reply), "RUN_FAILED");
  ASSERT_EQ(reply->size(), 2u);
  const std::string why = str((*reply)[1]);
  EXPECT_NE(why.find("cannot create"), std::string::npos) << why;
  EXPECT_EQ(runs.failed_runs(), 1u);
  fs::create_directories(dir.path);
  const auto path = runs.begin("p", "next.root");
  runs.complete(runs.accept("p", 10), hits(1, 1));
  EXPECT_EQ(header_of(runs.end("p", {})), "ACK");
  EXPECT_TRUE(fs::exists(path));
}

// A full disk mid-run (an 8 MiB tmpfs; needs root to mount it) ends that run
// with RUN_FAILED and removes its partial file; a run of another client, on
// another file system, goes on.
TEST(AsyncRuns, AFullDiskEndsThatRunOnlyWithRunFailed) {
  TempDir dir;
  fs::create_directories(dir.path / "small");
  if (::mount("tmpfs", (dir.path / "small").c_str(), "tmpfs", 0, "size=8m") != 0) {
    GTEST_SKIP() << "cannot mount an 8 MiB tmpfs here (" << std::strerror(errno)
                 << "); the full-disk case needs root";
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{dir.path / "small"};
  AsyncRuns full({.outdir = dir.path / "small", .events_per_basket = 1}, detector());
  AsyncRuns roomy({.outdir = dir.path / "big", .events_per_basket = 1}, detector());
  const auto other = roomy.begin("other", "other.root");
  roomy.complete(roomy.accept("other", 10), hits(0, 1));
  const auto doomed = full.begin("p", "doomed.root");
  const auto partial = fs::path(doomed.string() + ".partial");
  ASSERT_TRUE(fs::exists(partial));
  for (std::uint32_t e = 0; e < 20; ++e) {
    EXPECT_TRUE(full.complete(full.accept("p", 10), hits(e, 20000)).empty());
  }
  EXPECT_EQ(full.failed_runs(), 1u);
  full.complete(full.accept("p", 10), hits(99, 1));  // dropped quietly
  EXPECT_EQ(header_of(full.end("p", {})), "RUN_FAILED");
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_FALSE(fs::exists(doomed));
  // The space is free again: the next run there works.
  const auto next = full.begin("p", "next.root");
  full.complete(full.accept("p", 10), hits(5, 3));
  EXPECT_EQ(header_of(full.end("p", {})), "ACK");
  EXPECT_TRUE(fs::exists(next));
  roomy.complete(roomy.accept("other", 10), hits(1, 1));
  EXPECT_EQ(header_of(roomy.end("other", {})), "ACK");
  EXPECT_EQ(read_u32(other, "/output/event_id"), (std::vector<std::uint32_t>{0, 1}));
}

TEST(AsyncRuns, WritesEventsInSubmissionOrderAndAcksRunEndWhenDrained) {
  TempDir dir;
  AsyncRuns runs({.outdir = dir.path, .events_per_basket = 2}, detector());
  const auto path = runs.begin("10.0.0.1", "data/run_1.root");
  EXPECT_EQ(path, dir.path / "run_1.charon.h5");
  EXPECT_TRUE(fs::exists(dir.path / "run_1.charon.h5.partial"));
  std::vector<Ticket> t;
  for (std::uint32_t e = 0; e < 5; ++e) t.push_back(runs.accept("10.0.0.1", 1000));
  EXPECT_EQ(runs.backlog_photons(), 5000u);
  // Out of order completion; nothing is written until the prefix is complete.
  EXPECT_TRUE(runs.complete(t[2], hits(2, 3)).empty());
  EXPECT_TRUE(runs.complete(t[1], hits(1, 0)).empty());
  EXPECT_TRUE(runs.complete(t[0], hits(0, 5)).empty());  // basket of 3 written
  EXPECT_EQ(runs.backlog_photons(), 2000u);
  // RUN_END waits for events 3 and 4.
  EXPECT_FALSE(runs.end("10.0.0.1", {Buffer::copy_of("A", 1)}));
  EXPECT_FALSE(runs.end("10.0.0.1", {Buffer::copy_of("B", 1)}));  // a resend waits too
  EXPECT_TRUE(runs.complete(t[4], hits(4, 1)).empty());
  auto waiters = runs.complete(t[3], hits(3, 2));
  ASSERT_EQ(waiters.size(), 2u);
  EXPECT_FALSE(fs::exists(dir.path / "run_1.charon.h5.partial"));
  ASSERT_TRUE(fs::exists(path));
  EXPECT_EQ(read_u32(path, "/output/event_id"), (std::vector<std::uint32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(read_u32(path, "/output/nchannel_id"), (std::vector<std::uint32_t>{5, 0, 3, 2, 1}));
  EXPECT_EQ(read_u32(path, "/output/channel_id").size(), 11u);
  ASSERT_EQ(runs.closed_runs().size(), 1u);
  EXPECT_EQ(runs.closed_runs()[0].events, 5u);
  EXPECT_EQ(runs.closed_runs()[0].hits, 11u);
  // A resend of RUN_END after the close: ACK at once.
  EXPECT_TRUE(runs.end("10.0.0.1", {}));
}

TEST(AsyncRuns, EventsWithoutRunBeginGetAGeneratedRunAndPeersAreSeparate) {
  TempDir dir;
  AsyncRuns runs({.outdir = dir.path}, detector());
  auto a = runs.accept("peer-a", 10);
  auto b = runs.accept("peer-b", 10);
  EXPECT_NE(a.run, b.run);
  EXPECT_EQ(runs.open_runs(), 2u);
  runs.complete(a, hits(0, 1));
  EXPECT_TRUE(runs.end("peer-a", {}));
  EXPECT_EQ(runs.open_runs(), 1u);
  EXPECT_EQ(runs.closed_runs()[0].path.filename().string().rfind("run_", 0), 0u);
}

TEST(AsyncRuns, SecondRunBeginEndsThePreviousRun) {
  TempDir dir;
  AsyncRuns runs({.outdir = dir.path}, detector());
  runs.begin("p", "first");
  auto t = runs.accept("p", 10);
  runs.begin("p", "second");  // "first" drains and closes after its event
  auto u = runs.accept("p", 10);
  EXPECT_NE(t.run, u.run);
  runs.complete(t, hits(7, 1));
  ASSERT_EQ(runs.closed_runs().size(), 1u);
  EXPECT_EQ(runs.closed_runs()[0].path.filename(), "first.charon.h5");
  runs.complete(u, hits(8, 1));
  EXPECT_TRUE(runs.end("p", {}));
  EXPECT_EQ(read_u32(dir.path / "second.charon.h5", "/output/event_id"),
            (std::vector<std::uint32_t>{8}));
}

TEST(AsyncRuns, CloseAllWritesWhatCompletedInOrder) {
  TempDir dir;
  {
    AsyncRuns runs({.outdir = dir.path}, detector());
    runs.begin("p", "cut");
    auto t0 = runs.accept("p", 1);
    auto t1 = runs.accept("p", 1);
    runs.accept("p", 1);
    runs.complete(t1, hits(1, 1));
    runs.complete(t0, hits(0, 1));
  }  // destructor closes
  EXPECT_EQ(read_u32(dir.path / "cut.charon.h5", "/output/event_id"),
            (std::vector<std::uint32_t>{0, 1}));
}

TEST(AsyncRuns, BacklogLimit) {
  TempDir dir;
  AsyncRuns runs({.outdir = dir.path, .max_backlog_photons = 100}, detector());
  auto t = runs.accept("p", 150);
  EXPECT_TRUE(runs.over_backlog());
  runs.complete(t, hits(0, 0));
  EXPECT_FALSE(runs.over_backlog());
}

TEST(AsyncRuns, UnwritableDirectoryIsASetupError) {
  EXPECT_THROW(AsyncRuns({.outdir = "/proc/acheron-no-such-dir"}, detector()), SetupError);
}

}  // namespace
}  // namespace acheron::charon
