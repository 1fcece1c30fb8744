// Remote-object benchmarks, side by side in one run:
//   1. call round trip (RemoteClient -> RemoteServer, a 16-byte argument and
//      result) versus a raw ZeroMQ REQ/REP round trip of 16 bytes on the same
//      transport (inproc, ipc, tcp loopback); target <= 1.5x;
//   2. periodic stream rate accuracy over --seconds at 1 kHz, and at 100 Hz
//      with 5 ms of work per call; target within 1 % of the requested rate.
// The round-trip cases run interleaved in --rounds blocks of --calls/--rounds
// calls each; ratios are per round (paired), their median is reported.
//
// Usage: bench_remote [--calls N] [--rounds R] [--seconds S] [--skip-streams]
//                     [--split-cpus]
//        bench_remote --serve   (servers for bench/bench_remote.py: prints their endpoints)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
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

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// CPU time the hypervisor gave to other guests, as a fraction of all CPU
// time since the previous call (from /proc/stat).
double steal_fraction() {
  static std::uint64_t last_steal = 0, last_total = 0;
  std::ifstream f("/proc/stat");
  std::string cpu;
  std::uint64_t v[8] = {};
  f >> cpu;
  for (auto& x : v) f >> x;
  std::uint64_t total = 0;
  for (auto x : v) total += x;
  const double frac = total > last_total ? static_cast<double>(v[7] - last_steal) /
                                               static_cast<double>(total - last_total)
                                         : 0.0;
  last_steal = v[7];
  last_total = total;
  return frac;
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

// One transport's three round trips, set up once and timed in interleaved
// blocks: a raw REQ/REP echo of 16 bytes, and RemoteClient::call of
// echo(16-byte string) declared Threading::io_thread and with the default
// threading. Paired blocks run within a few milliseconds of each other, so
// the per-round ratios cancel the machine's drift (this machine is shared
// and its speed changes from second to second).
struct RoundTrips {
  RoundTrips(zmq::context_t& ctx, const std::string& transport, int k)
      : rep(ctx, zmq::socket_type::rep),
        req(ctx, zmq::socket_type::req),
        server({.rpc_bind = endpoints(transport, k).rpc,
                .stream_bind = endpoints(transport, k).stream,
                .threads = 1}) {
    rep.set(zmq::sockopt::linger, 0);
    rep.bind(endpoints(transport, 100 + k).rpc);
    echo = std::thread([this] {
      zmq::message_t m;
      for (;;) {
        if (!rep.recv(m) || m.size() == 0) return;  // an empty message stops it
        rep.send(m, zmq::send_flags::none);
      }
    });
    req.set(zmq::sockopt::linger, 0);
    req.connect(rep.get(zmq::sockopt::last_endpoint));
    server.add_call("echo_io", [](const std::string& s) { return s; },
                    {.params = {{"s"}}, .threading = Threading::io_thread});
    server.add_call("echo_pool", [](const std::string& s) { return s; }, {.params = {{"s"}}});
    server.start();
    client.emplace(ClientOptions{.endpoint = server.rpc_endpoint(), .context = server.context()});
    args.arg(std::string("0123456789abcdef"));
    raw(200);  // connect and warm up
    call("echo_io", 200);
    call("echo_pool", 200);
  }
  ~RoundTrips() {
    req.send(zmq::message_t(), zmq::send_flags::none);
    echo.join();
  }
  // Microseconds per round trip over n calls, and the CPU microseconds per
  // call of the whole process (client, server and ZeroMQ threads).
  struct Time {
    double wall, cpu;
  };
  Time raw(int n) {
    char payload[16] = "0123456789abcde";
    zmq::message_t reply;
    const auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    for (int i = 0; i < n; ++i) {
      req.send(zmq::buffer(payload, sizeof payload), zmq::send_flags::none);
      (void)req.recv(reply);
    }
    return {seconds_since(t0) * 1e6 / n, (cpu_seconds() - c0) * 1e6 / n};
  }
  Time call(const char* name, int n) {
    const auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    for (int i = 0; i < n; ++i) client->call(name, args);
    return {seconds_since(t0) * 1e6 / n, (cpu_seconds() - c0) * 1e6 / n};
  }

  zmq::socket_t rep, req;
  std::thread echo;
  RemoteServer server;
  std::optional<RemoteClient> client;
  CallArgs args;
};

// Restricts the calling thread (and the threads it starts afterwards) to one CPU.
void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::pthread_setaffinity_np(::pthread_self(), sizeof set, &set) != 0)
    std::fprintf(stderr, "bench_remote: cannot pin to CPU %d\n", cpu);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
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
  int rounds = 20;
  double seconds = 10;
  bool streams = true;
  bool split_cpus = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--calls") && i + 1 < argc)
      calls = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc)
      rounds = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = std::atof(argv[++i]);
    else if (!std::strcmp(argv[i], "--split-cpus"))
      split_cpus = true;
    else if (!std::strcmp(argv[i], "--skip-streams"))
      streams = false;
    else if (!std::strcmp(argv[i], "--serve"))
      return serve();
    else {
      std::fprintf(stderr,
                   "usage: bench_remote [--calls N] [--rounds R] [--seconds S] [--skip-streams] "
                   "[--split-cpus]\n");
      return 2;
    }
  }
  log::set_level("warn");
  zmq::context_t ctx(1);
  const int block = std::max(1, calls / rounds);
  std::printf(
      "Call round trip, 16-byte argument and result: %d rounds of %d calls per case, the cases "
      "interleaved;\nmedian microseconds per call, and the median (interquartile range) of the "
      "per-round ratios to raw REQ/REP\n",
      rounds, block);
  std::printf(
      "| transport | raw REQ/REP | remote call (I/O thread) | ratio | remote call (default "
      "threading) | ratio | target | CPU us/call: raw, I/O thread, default | steal |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  int k = 0;
  std::vector<std::string> transports = {"inproc", "ipc", "tcp"};
  if (const char* only = std::getenv("BENCH_REMOTE_TRANSPORT")) transports = {only};
  for (const std::string& transport : transports) {
    // --split-cpus: the server threads (and the raw echo thread) start on
    // CPU 1 and inherit it; the calling thread runs on CPU 0. Both cases
    // then cross CPUs on every round trip, instead of wherever the
    // scheduler happens to place the two threads of each pair.
    if (split_cpus) pin_to_cpu(1);
    RoundTrips rt(ctx, transport, ++k);
    if (split_cpus) pin_to_cpu(0);
    const char* only_case = std::getenv("BENCH_REMOTE_CASE");
    const int only = !only_case                           ? -1
                     : std::strcmp(only_case, "raw") == 0 ? 0
                     : std::strcmp(only_case, "io") == 0  ? 1
                                                          : 2;
    std::vector<double> raw, io, pool, io_ratio, pool_ratio, cpu[3];
    steal_fraction();
    for (int r = 0; r < rounds; ++r) {
      // Rotate the order so that no case always runs first or last.
      RoundTrips::Time t[3];
      for (int j = 0; j < 3; ++j) {
        const int c = (r + j) % 3;
        if (only >= 0 && c != only) {  // BENCH_REMOTE_CASE: one case only (for profiling)
          t[c] = {1, 1};
          cpu[c].push_back(0);
          continue;
        }
        t[c] = c == 0 ? rt.raw(block) : rt.call(c == 1 ? "echo_io" : "echo_pool", block);
        cpu[c].push_back(t[c].cpu);
      }
      raw.push_back(t[0].wall);
      io.push_back(t[1].wall);
      pool.push_back(t[2].wall);
      io_ratio.push_back(t[1].wall / t[0].wall);
      pool_ratio.push_back(t[2].wall / t[0].wall);
    }
    const double steal = steal_fraction();
    std::printf(
        "| %s | %.1f | %.1f | %.2f (%.2f-%.2f) | %.1f | %.2f (%.2f-%.2f) | <= 1.5 | %.1f, %.1f, "
        "%.1f | %.0f %% |\n",
        transport.c_str(), median(raw), median(io), median(io_ratio), quantile(io_ratio, 0.25),
        quantile(io_ratio, 0.75), median(pool), median(pool_ratio), quantile(pool_ratio, 0.25),
        quantile(pool_ratio, 0.75), median(cpu[0]), median(cpu[1]), median(cpu[2]), 100 * steal);
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
