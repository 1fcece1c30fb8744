// DHS benchmarks (docs/benchmarks.md, "DCSS hardware server"):
// 1. latency from stoh_start_operation to the first htos_operation_update and
//    to htos_operation_completed for a trivial operation: in process (Dhs →
//    Outbox, no sockets) and through the fake DCSS over loopback TCP in xos1
//    and xos2, side by side;
// 2. the loop DHS end to end (fake Axis POSTs → receiver → fake AutoML →
//    LOOP_INFO at the fake DCSS) at 30 fps and at higher frame rates, and the
//    same with the frames read from the fake Axis's MJPEG stream.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

#include "acheron/core/Log.hh"
#include "acheron/dcss/Dhs.hh"
#include "acheron/dcss/FakeCamera.hh"
#include "acheron/dcss/FakeDcss.hh"
#include "acheron/dcss/LoopDhs.hh"
#include "acheron/dcss/Runner.hh"
#include "acheron/dcss/Session.hh"
#include "acheron/wire/Xos.hh"

using namespace acheron;
using namespace acheron::dcss;
using namespace std::chrono_literals;
namespace xos = wire::xos;

namespace {

struct Stats {
  double median_us = 0, p99_us = 0;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return {};
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)]};
}

double us(Duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

void trivial(Dhs& dhs) {
  dhs.add_operation("noop", [](const OperationPtr& op) {
    op->update("working");
    op->complete("normal", "done");
  });
}

// In process: handle() on the caller's thread, the handler on a worker, the
// two messages popped from the Outbox.
std::pair<Stats, Stats> in_process(int n) {
  auto outbox = std::make_shared<Outbox>();
  DhsOptions o;
  Dhs dhs(o, outbox);
  trivial(dhs);
  outbox->open(1);
  dhs.connected(1);
  std::vector<double> first, done;
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    dhs.handle("stoh_start_operation noop 1." + std::to_string(i));
    auto u = outbox->pop(1s);
    const auto t1 = Clock::now();
    auto c = outbox->pop(1s);
    const auto t2 = Clock::now();
    if (!u || !c) std::abort();
    first.push_back(us(t1 - t0));
    done.push_back(us(t2 - t0));
  }
  return {stats(first), stats(done)};
}

std::pair<Stats, Stats> over_tcp(int n, xos::Protocol level) {
  FakeDcssOptions fo;
  fo.rows = {{"benchDHS", "127.0.0.1", level}};
  fo.devices = {FakeDevice::operation("noop", "benchDHS")};
  FakeDcss dcss(fo);
  dcss.start();
  DhsOptions o;
  o.name = "benchDHS";
  Dhs dhs(o);
  trivial(dhs);
  SessionOptions so;
  so.port = dcss.port();
  Session session(so, dhs);
  session.start();
  if (!dcss.wait_online("benchDHS", 10s)) std::abort();
  std::vector<double> first, done;
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    const auto h = dcss.start_operation("benchDHS", "noop");
    if (!dcss.wait_completion(h, 5s)) std::abort();
    TimePoint tu{}, tc{};
    for (const auto& r : dcss.records()) {
      if (r.tokens.size() > 2 && r.tokens[2] == h) {
        (r.tokens[0] == "htos_operation_update" ? tu : tc) = r.time;
      }
    }
    first.push_back(us(tu - t0));
    done.push_back(us(tc - t0));
    if (i % 256 == 255) dcss.clear_records();
  }
  session.stop();
  return {stats(first), stats(done)};
}

struct LoopRun {
  double fps = 0;
  int frames = 0;
  int results = 0;
  double elapsed_s = 0;     // start_operation → completion
  double achieved_fps = 0;  // results / (last result − first result)
  Stats result_latency;     // frame i's expected arrival → its LOOP_INFO at DCSS
  std::string status;
};

enum class Source : std::uint8_t { push, mjpeg };

LoopRun loop_run(double fps, int frames, Source source) {
  FakeAutoml automl;
  automl.start();
  FakeAxis axis;
  axis.start();
  FakeDcssOptions fo;
  fo.rows = {{"loopDHS", "127.0.0.1", xos::Protocol::v2}};
  fo.devices = {FakeDevice::operation("collectLoopImages", "loopDHS")};
  FakeDcss dcss(fo);
  dcss.start();
  DhsConfig c = default_dhs_config();
  c.dcss.port = dcss.port();
  c.loop.osci_time = frames / fps;
  c.loop.video_fps = fps;
  c.loop.automl.port = automl.port();
  c.loop.axis.port = axis.port();
  c.loop.jpeg_receiver.bind = "127.0.0.1";
  c.loop.jpeg_receiver.port = 0;
  c.loop.frame_source = source == Source::mjpeg ? "mjpeg" : "push";
  DhsRunner runner(c);
  TimePoint push_start{};
  dcss.on_message([&](const FakeDcss::Record& r) {
    if (r.tokens.size() == 4 && r.tokens[3] == "start_oscillation") {
      // Push: the camera starts sending now. MJPEG: the DHS opened the
      // stream as it sent this update; frame i is due i / fps later.
      push_start = Clock::now();
      if (source == Source::push) {
        axis.push("127.0.0.1", runner.loop()->receiver_port(), frames, fps);
      }
    }
  });
  runner.start();
  if (!dcss.wait_online("loopDHS", 10s)) std::abort();
  const auto t0 = Clock::now();
  const auto h = dcss.start_operation("loopDHS", "collectLoopImages");
  auto rec = dcss.wait_completion(h, 60s);
  const auto t1 = Clock::now();
  LoopRun out;
  out.fps = fps;
  out.frames = frames;
  out.status = rec ? rec->status + " " + rec->result : "timeout";
  out.elapsed_s = std::chrono::duration<double>(t1 - t0).count();
  std::vector<double> lat;
  TimePoint first{}, last{};
  for (const auto& r : dcss.records()) {
    if (r.tokens.size() > 4 && r.tokens[3] == "LOOP_INFO") {
      const int i = std::stoi(r.tokens[4]);
      const auto due =
          push_start + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(i / fps));
      lat.push_back(us(r.time - due));
      if (out.results == 0) first = r.time;
      last = r.time;
      ++out.results;
    }
  }
  out.achieved_fps =
      out.results > 1 ? (out.results - 1) / std::chrono::duration<double>(last - first).count() : 0;
  out.result_latency = stats(lat);
  axis.wait_pushes(10s);
  runner.stop();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  if (n <= 0) n = 2000;
  log::set_level("warn");
  std::printf(
      "== trivial operation: stoh_start_operation -> first update / completion (%d ops, "
      "median and p99 in microseconds)\n",
      n);
  const auto ip = in_process(n);
  const auto v2 = over_tcp(n, xos::Protocol::v2);
  const auto v1 = over_tcp(n, xos::Protocol::v1);
  std::printf("%-30s %10s %10s %12s %12s %8s\n", "path", "update p50", "update p99", "complete p50",
              "complete p99", "ratio");
  auto row = [&](const char* name, const std::pair<Stats, Stats>& s) {
    std::printf("%-30s %10.1f %10.1f %12.1f %12.1f %8.2f\n", name, s.first.median_us,
                s.first.p99_us, s.second.median_us, s.second.p99_us,
                s.second.median_us / ip.second.median_us);
  };
  row("in process (no sockets)", ip);
  row("loopback TCP, xos2", v2);
  row("loopback TCP, xos1", v1);

  std::printf(
      "\n== loop DHS end to end: fake Axis (POSTs -> receiver, or MJPEG stream) -> fake AutoML "
      "-> LOOP_INFO\n");
  std::printf("%-6s %8s %7s %8s %10s %13s %14s %14s  %s\n", "source", "fps", "frames", "results",
              "elapsed s", "achieved fps", "latency p50 ms", "latency p99 ms", "completion");
  for (const auto& [source, fps, frames] :
       std::vector<std::tuple<Source, double, int>>{{Source::push, 30, 90},
                                                    {Source::mjpeg, 30, 90},
                                                    {Source::push, 60, 180},
                                                    {Source::mjpeg, 60, 180},
                                                    {Source::push, 120, 360},
                                                    {Source::mjpeg, 120, 360}}) {
    const auto r = loop_run(fps, frames, source);
    std::printf("%-6s %8.0f %7d %8d %10.2f %13.1f %14.2f %14.2f  %s  (achieved/target %.3f)\n",
                source == Source::push ? "push" : "mjpeg", r.fps, r.frames, r.results, r.elapsed_s,
                r.achieved_fps, r.result_latency.median_us / 1000, r.result_latency.p99_us / 1000,
                r.status.c_str(), r.achieved_fps / r.fps);
  }
  return 0;
}
