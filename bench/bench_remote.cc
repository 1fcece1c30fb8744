// Remote-object benchmarks, side by side in one run:
//   1. call round trip (RemoteClient -> RemoteServer, a 16-byte argument and
//      result) versus a raw ZeroMQ REQ/REP round trip of 16 bytes on the same
//      transport (inproc, ipc, tcp loopback); target <= 1.5x;
//   2. periodic stream rate accuracy over --seconds at 1 kHz, and at 100 Hz
//      with 5 ms of work per call; target within 1 % of the requested rate.
// Each round-trip case alternates with its baseline, best of three.
//
// Usage: bench_remote [--calls N] [--seconds S] [--skip-streams]
//        bench_remote --serve   (servers for bench/bench_remote.py: prints their endpoints)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "acheron/core/Log.hh"
#include "acheron/remote/Client.hh"
#include "acheron/remote/Server.hh"

using namespace acheron;
using namespace acheron::remote;
using namespace std::chrono_literals;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Endpoints {
  std::string rpc, stream;
};

Endpoints endpoints(const std::string& transport, int k) {
  const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(k);
  if (transport == "inproc") return {"inproc://bench-rpc" + tag, "inproc://bench-st" + tag};
  if (transport == "ipc")
    return {"ipc:///tmp/acheron-bench-rpc" + tag, "ipc:///tmp/acheron-bench-st" + tag};
  return {"tcp://127.0.0.1:0", "tcp://127.0.0.1:0"};
}

// Raw REQ/REP: microseconds per round trip of a 16-byte message.
double raw_round_trip(zmq::context_t& ctx, const std::string& transport, int calls, int k) {
  zmq::socket_t rep(ctx, zmq::socket_type::rep);
  rep.set(zmq::sockopt::linger, 0);
  rep.bind(endpoints(transport, 100 + k).rpc);
  const std::string ep = rep.get(zmq::sockopt::last_endpoint);
  std::thread server([&] {
    zmq::message_t m;
    for (int i = 0; i < calls; ++i) {
      (void)rep.recv(m);
      rep.send(m, zmq::send_flags::none);
    }
  });
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.connect(ep);
  char payload[16] = "0123456789abcde";
  zmq::message_t reply;
  const auto t0 = Clock::now();
  for (int i = 0; i < calls; ++i) {
    req.send(zmq::buffer(payload, sizeof payload), zmq::send_flags::none);
    (void)req.recv(reply);
  }
  const double us = seconds_since(t0) * 1e6 / calls;
  server.join();
  return us;
}

// RemoteClient -> RemoteServer: microseconds per call of echo(16-byte string).
double remote_round_trip(const std::string& transport, Threading threading, int calls, int k) {
  auto eps = endpoints(transport, k);
  RemoteServer server({.rpc_bind = eps.rpc, .stream_bind = eps.stream, .threads = 1});
  server.add_call("echo", [](const std::string& s) { return s; },
                  {.params = {{"s"}}, .threading = threading});
  server.start();
  RemoteClient client({.endpoint = server.rpc_endpoint(), .context = server.context()});
  const std::string payload = "0123456789abcdef";
  CallArgs args;
  args.arg(payload);
  for (int i = 0; i < 100; ++i) client.call("echo", args);  // connect and warm up
  const auto t0 = Clock::now();
  for (int i = 0; i < calls; ++i) client.call("echo", args);
  return seconds_since(t0) * 1e6 / calls;
}

struct RateResult {
  double requested, received_hz, server_hz;
  std::uint64_t overruns;
};

RateResult stream_rate(double hz, std::chrono::microseconds work, double seconds) {
  RemoteServer server({.rpc_bind = "tcp://127.0.0.1:0", .stream_bind = "tcp://127.0.0.1:0"});
  std::uint64_t n = 0;
  server.add_stream("s", hz,
                    [&] {
                      if (work.count() > 0) {
                        const auto end =
                            Clock::now() + work;  // busy work, as a computation would be
                        while (Clock::now() < end) {
                        }
                      }
                      return Value(Json(++n));
                    },
                    {.enabled = false, .only_with_subscribers = false});
  server.start();
  RemoteClient client(server.rpc_endpoint());
  auto sub = client.subscribe("s", {.mode = ReceiveMode::queue, .capacity = 1'000'000});
  std::this_thread::sleep_for(200ms);  // the subscription reaches the server
  client.enable_stream("s");
  // Count values by their server timestamps: first to last over the window.
  std::int64_t first = 0, last = 0;
  std::uint64_t count = 0;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    auto v = sub->next(100ms);
    if (!v) continue;
    if (count == 0) first = v->mono_ns;
    last = v->mono_ns;
    ++count;
  }
  const auto status = server.streams().at(0);
  client.disable_stream("s");
  const double span = static_cast<double>(last - first) * 1e-9;
  return {hz, count > 1 ? static_cast<double>(count - 1) / span : 0, status.achieved_hz,
          status.overruns};
}

// Servers for the Python benchmark (bench/bench_remote.py), on TCP loopback:
// a raw REP that answers every message with 2 bytes, and a RemoteServer with
// echo(x) and sink(array) -> nbytes declared Threading::io_thread, and
// echo_pool(x) with the default threading.
int serve() {
  zmq::context_t ctx(1);
  zmq::socket_t rep(ctx, zmq::socket_type::rep);
  rep.set(zmq::sockopt::linger, 0);
  rep.bind("tcp://127.0.0.1:0");
  RemoteServer server({.rpc_bind = "tcp://127.0.0.1:0", .stream_bind = "tcp://127.0.0.1:0"});
  server.add_call("echo", [](const Json& x) { return x; },
                  {.params = {{"x"}}, .threading = Threading::io_thread});
  server.add_call("echo_pool", [](const Json& x) { return x; }, {.params = {{"x"}}});
  server.add_call("sink", [](const Array& a) { return static_cast<std::int64_t>(a.nbytes()); },
                  {.params = {{"a"}}, .threading = Threading::io_thread});
  server.start();
  std::printf("raw %s remote %s\n", rep.get(zmq::sockopt::last_endpoint).c_str(),
              server.rpc_endpoint().c_str());
  std::fflush(stdout);
  zmq::message_t m;
  for (;;) {
    do {
      if (!rep.recv(m)) return 0;
    } while (m.more());
    rep.send(zmq::str_buffer("ok"), zmq::send_flags::none);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int calls = 20000;
  double seconds = 10;
  bool streams = true;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--calls") && i + 1 < argc)
      calls = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = std::atof(argv[++i]);
    else if (!std::strcmp(argv[i], "--skip-streams"))
      streams = false;
    else if (!std::strcmp(argv[i], "--serve"))
      return serve();
    else {
      std::fprintf(stderr, "usage: bench_remote [--calls N] [--seconds S] [--skip-streams]\n");
      return 2;
    }
  }
  log::set_level("warn");
  zmq::context_t ctx(1);
  std::printf("Call round trip, 16-byte argument and result, %d calls, best of 3 (microseconds)\n",
              calls);
  std::printf(
      "| transport | raw REQ/REP | remote call (I/O thread) | ratio | remote call (pool) | ratio | "
      "target |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  int k = 0;
  std::vector<std::string> transports = {"inproc", "ipc", "tcp"};
  if (const char* only = std::getenv("BENCH_REMOTE_TRANSPORT")) transports = {only};
  for (const std::string& transport : transports) {
    double raw = 1e300, io = 1e300, pool = 1e300;
    for (int rep = 0; rep < 3; ++rep) {
      ++k;
      // inproc needs the server's context: the raw baseline gets its own.
      // BENCH_REMOTE_CASE=raw|io|pool runs one case only (for profiling).
      const char* only = std::getenv("BENCH_REMOTE_CASE");
      const std::string c = only ? only : "";
      if (c.empty() || c == "raw") raw = std::min(raw, raw_round_trip(ctx, transport, calls, k));
      if (c.empty() || c == "io") {
        io = std::min(io, remote_round_trip(transport, Threading::io_thread, calls, k));
      }
      if (c.empty() || c == "pool") {
        pool = std::min(pool, remote_round_trip(transport, Threading::pool, calls, 1000 + k));
      }
    }
    std::printf("| %s | %.1f | %.1f | %.2f | %.1f | %.2f | <= 1.5 |\n", transport.c_str(), raw, io,
                io / raw, pool, pool / raw);
    std::fflush(stdout);
  }
  // ipc:// endpoints leave socket files behind.
  const std::string prefix = "acheron-bench-";
  const std::string pid = std::to_string(::getpid()) + "-";
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator("/tmp", ec)) {
    const std::string n = f.path().filename().string();
    if (n.rfind(prefix, 0) == 0 && n.find(pid) != std::string::npos) std::filesystem::remove(f, ec);
  }
  if (!streams) return 0;
  std::printf(
      "\nPeriodic stream rate over %.0f s (received at a TCP client, by server timestamps)\n",
      seconds);
  std::printf(
      "| requested | work per call | received Hz | error | server achieved Hz | overruns | target "
      "|\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (auto [hz, work] : {std::pair{1000.0, 0us}, std::pair{100.0, 5000us}}) {
    auto r = stream_rate(hz, work, seconds);
    std::printf("| %.0f Hz | %lld us | %.2f | %+.3f %% | %.2f | %llu | within 1 %% |\n", hz,
                static_cast<long long>(work.count()), r.received_hz,
                100.0 * (r.received_hz - hz) / hz, r.server_hz,
                static_cast<unsigned long long>(r.overruns));
    std::fflush(stdout);
  }
  return 0;
}
