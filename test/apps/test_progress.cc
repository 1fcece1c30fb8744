// The progress line of the long commands (apps/acheron/Progress.hh), drawn
// into a memory stream with an injected clock: what a user sees at each
// point, with no sleeping and no timing.
#include "Progress.hh"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace acheron::app {
namespace {

// A FILE* writing into memory; text() is what was written so far.
class MemoryFile {
 public:
  MemoryFile() : f_(open_memstream(&buf_, &size_)) {}
  ~MemoryFile() {
    std::fclose(f_);
    std::free(buf_);
  }
  std::FILE* get() { return f_; }
  std::string text() {
    std::fflush(f_);
    return std::string(buf_, size_);
  }

 private:
  char* buf_ = nullptr;
  std::size_t size_ = 0;
  std::FILE* f_;
};

struct FakeClock {
  double t = 100;
  std::function<double()> fn() {
    return [this] { return t; };
  }
};

TEST(Progress, CountsAndRatesInFourDigits) {
  EXPECT_EQ(format_count(0), "0");
  EXPECT_EQ(format_count(950), "950");
  EXPECT_EQ(format_count(12.5), "12.5");
  EXPECT_EQ(format_count(12345), "12.3k");
  EXPECT_EQ(format_count(4.56e6), "4.56M");
  EXPECT_EQ(format_count(-1), "--");
}

TEST(Progress, EtaInSecondsMinutesHours) {
  EXPECT_EQ(format_eta(0), "0s");
  EXPECT_EQ(format_eta(4.2), "5s");  // rounded up: never says 0s while work is left
  EXPECT_EQ(format_eta(65), "1m05s");
  EXPECT_EQ(format_eta(7380), "2h03m");
  EXPECT_EQ(format_eta(-1), "--");
}

TEST(Progress, BarShowsDoneTotalPercentRateAndEta) {
  MemoryFile out;
  FakeClock clock;
  Progress p({.label = "simulate",
              .unit = "events",
              .total = 100,
              .out = out.get(),
              .mode = ProgressMode::on,
              .clock = clock.fn(),
              .width = 10});
  clock.t += 5;
  p.update(25);  // 5 events/s, 75 left: 15 s
  EXPECT_EQ(out.text(), "\rsimulate [==>       ] 25/100 events  25.0%  5 events/s  ETA 15s");
  EXPECT_EQ(p.line(100, 10), "simulate [==========] 100/100 events 100.0%  10 events/s  ETA 0s");
  // 99.96 % is not shown as 100 %.
  Progress q({.unit = "photons", .total = 10000, .out = out.get(), .mode = ProgressMode::on});
  EXPECT_NE(q.line(9996, 1).find(" 99.9%"), std::string::npos) << q.line(9996, 1);
}

TEST(Progress, NoRateOrEtaBeforeTimeHasPassed) {
  MemoryFile out;
  FakeClock clock;
  Progress p({.label = "x",
              .unit = "frames",
              .total = 10,
              .out = out.get(),
              .mode = ProgressMode::on,
              .clock = clock.fn(),
              .width = 4});
  EXPECT_EQ(p.line(0, 0), "x [>   ] 0/10 frames   0.0%  -- frames/s  ETA --");
}

TEST(Progress, OpenEndedWorkShowsASpinnerCountRateAndElapsed) {
  MemoryFile out;
  FakeClock clock;
  Progress p({.label = "capture",
              .unit = "messages",
              .out = out.get(),
              .mode = ProgressMode::on,
              .clock = clock.fn()});
  clock.t += 2;
  p.update(3000);
  EXPECT_EQ(out.text(), "\r| capture 3k messages  1.5k messages/s  2s");
  clock.t += 1;
  p.update(3001);
  EXPECT_NE(out.text().find("\r/ capture 3k messages"), std::string::npos) << out.text();
}

TEST(Progress, ARunOfGivenLengthShowsTheTimeGoneAndLeft) {
  MemoryFile out;
  Progress p({.label = "stream",
              .unit = "frames",
              .duration_s = 10,
              .out = out.get(),
              .mode = ProgressMode::on,
              .width = 10});
  EXPECT_EQ(p.line(1200, 4), "stream [====>     ] 1.2k frames  40.0%  300 frames/s  ETA 6s");
  EXPECT_EQ(p.line(3000, 10.5), "stream [==========] 3k frames 100.0%  286 frames/s  ETA 0s");
}

TEST(Progress, RedrawsAtMostTenTimesASecondButAlwaysAtTheEnd) {
  MemoryFile out;
  FakeClock clock;
  Progress p({.label = "s",
              .unit = "events",
              .total = 1000,
              .out = out.get(),
              .mode = ProgressMode::on,
              .clock = clock.fn()});
  for (int i = 1; i < 1000; ++i) {
    clock.t += 0.001;  // 1000 updates a second
    p.update(static_cast<std::uint64_t>(i));
  }
  // About 1 s of updates: the first one and one per 0.1 s.
  EXPECT_GE(p.draws(), 9u);
  EXPECT_LE(p.draws(), 11u);
  const auto before = p.draws();
  p.update(1000);  // completion is drawn at once
  EXPECT_EQ(p.draws(), before + 1);
  EXPECT_NE(out.text().find("1000/1000 events 100.0%"), std::string::npos);
}

TEST(Progress, FinishEndsTheLineWithASummaryOnce) {
  MemoryFile out;
  FakeClock clock;
  {
    Progress p({.label = "bench",
                .unit = "photons",
                .total = 4,
                .out = out.get(),
                .mode = ProgressMode::on,
                .clock = clock.fn(),
                .width = 4});
    clock.t += 2;
    p.update(4);
    p.finish();
    p.finish();
  }  // the destructor does not write again
  const std::string text = out.text();
  EXPECT_EQ(text.substr(text.find('\n')), "\nbench: 4 photons in 2.00s (2 photons/s)\n");
}

TEST(Progress, ClearErasesTheLineForOtherOutput) {
  MemoryFile out;
  FakeClock clock;
  Progress p(
      {.label = "a", .unit = "b", .out = out.get(), .mode = ProgressMode::on, .clock = clock.fn()});
  p.update(1);
  const auto drawn = out.text();
  p.clear();
  EXPECT_EQ(out.text(), drawn + "\r" + std::string(drawn.size() - 1, ' ') + "\r");
}

TEST(Progress, WorkEndingBeforeTheDelayLeavesNoLine) {
  MemoryFile out;
  FakeClock clock;
  {
    Progress quick({.label = "check",
                    .unit = "solids",
                    .total = 10,
                    .out = out.get(),
                    .mode = ProgressMode::on,
                    .clock = clock.fn(),
                    .delay_s = 0.5});
    clock.t += 0.4;
    quick.update(10);
  }
  EXPECT_EQ(out.text(), "");
  Progress slow({.label = "check",
                 .unit = "solids",
                 .total = 10,
                 .out = out.get(),
                 .mode = ProgressMode::on,
                 .clock = clock.fn(),
                 .delay_s = 0.5});
  clock.t += 0.4;
  slow.update(4);
  EXPECT_EQ(slow.draws(), 0u);
  clock.t += 0.2;
  slow.update(5);
  EXPECT_EQ(slow.draws(), 1u);
  EXPECT_NE(out.text().find("5/10 solids"), std::string::npos);
}

TEST(Progress, NoWorkReportedLeavesNoLine) {
  MemoryFile out;
  FakeClock clock;
  {
    Progress p({.label = "mesh",
                .unit = "solids",
                .out = out.get(),
                .mode = ProgressMode::on,
                .clock = clock.fn(),
                .delay_s = 0.5});
    clock.t += 2;  // a long load that needed no meshing
  }
  EXPECT_EQ(out.text(), "");
}

TEST(Progress, FailedWorkEndsTheLineWithoutASummary) {
  MemoryFile out;
  FakeClock clock;
  try {
    Progress p({.label = "mesh",
                .unit = "solids",
                .total = 9,
                .out = out.get(),
                .mode = ProgressMode::on,
                .clock = clock.fn(),
                .width = 4});
    clock.t += 1;
    p.update(3);
    throw std::runtime_error("bad solid");
  } catch (const std::runtime_error&) {
  }
  const std::string text = out.text();
  EXPECT_EQ(text.find("mesh:"), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
  EXPECT_NE(text.find("3/9 solids"), std::string::npos) << text;
}

TEST(Progress, OffOrNotATerminalWritesNothing) {
  MemoryFile out;  // a memory stream is not a terminal
  {
    Progress automatic({.label = "a", .unit = "b", .total = 2, .out = out.get()});
    EXPECT_FALSE(automatic.enabled());
    automatic.update(2);
    Progress off(
        {.label = "a", .unit = "b", .total = 2, .out = out.get(), .mode = ProgressMode::off});
    off.update(1);
  }
  EXPECT_EQ(out.text(), "");
  // The global --progress forces it on where the command leaves it automatic.
  set_progress_mode(ProgressMode::on);
  Progress forced({.label = "a", .unit = "b", .out = out.get()});
  set_progress_mode(ProgressMode::automatic);
  EXPECT_TRUE(forced.enabled());
}

}  // namespace
}  // namespace acheron::app
