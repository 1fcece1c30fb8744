// Broker scaling benchmark, side by side in one run, all on loopback with real
// processes (`acheron broker`, `acheron photon worker`, `acheron photon serve`)
// and stub workers (this program started again with --stub-worker or
// --stub-serve: a ChAR0N backend peer that answers every PHOTONDATA at once
// with a valid, hit-less SIM_COMPLETE, so only the messaging is measured).
//
//   1. throughput of the broker with 1, 2 and 4 real workers (one engine
//      thread each) against one `photon serve` with one thread, direct, and
//      the CPU the engines got (on a shared machine that, not the number of
//      workers, sets the rate), with photons per engine CPU second;
//   2. the broker's cost per request: tiny (one-photon) events through the
//      broker to one real worker against direct to `photon serve`, one
//      request in flight (latency) and many (throughput);
//   3. the broker's ceiling with stub workers: requests/s with tiny events
//      and GB/s with big (default 1 M-photon, 48 MB) events, through the
//      broker to 1 and 4 stubs (also with --worker-prefetch 4) against a stub
//      served direct;
//   4. optionally the same stub ceiling through ChAR0N's own router.py (a
//      checkout given by --charon-router DIR, run with Debian's python3-zmq).
//
// The load is one DEALER client with a fixed window of requests in flight,
// each with its own event id (the broker would merge resends of one id);
// every reply is checked (SIM_COMPLETE with an outstanding event id).
// Each measurement runs for --seconds after a short warm-up. Memory stays
// bounded: at most the window of big requests is in flight, and the client
// sends them zero-copy from one buffer. All processes are stopped at the end
// (also on SIGINT/SIGTERM or an error). CPU times are read from
// /proc/PID/stat of the broker (router.py) and engine processes.
//
// Usage: bench_broker_scaling [--seconds S] [--photons N] [--big-photons N]
//                             [--max-workers N] [--acheron PATH]
//                             [--charon-router DIR]
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "BenchEvents.hh"
#include "CharonRouter.hh"

using namespace acheron;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::uint8_t kReady = 0x01;
constexpr std::uint8_t kHeartbeat = 0x02;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

// --- child processes -----------------------------------------------------------

std::vector<pid_t> g_children;

void stop_children() {
  for (pid_t p : g_children) ::kill(p, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  for (pid_t p : g_children) {
    while (::waitpid(p, nullptr, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        ::kill(p, SIGKILL);
        ::waitpid(p, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  g_children.clear();
}

void stop_one(pid_t pid) {
  ::kill(pid, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (::waitpid(pid, nullptr, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  g_children.erase(std::remove(g_children.begin(), g_children.end(), pid), g_children.end());
}

extern "C" void on_signal(int) {
  for (pid_t p : g_children) ::kill(p, SIGKILL);
  ::_exit(130);
}

struct Spawned {
  pid_t pid = -1;
  std::smatch match;
  std::string line;
};

// Starts argv with stdout on a pipe and stderr on /dev/null; with a
// pattern, waits (at most 30 s) for a stdout line that matches it. The rest
// of its stdout is read and dropped by a detached thread.
Spawned spawn(const std::vector<std::string>& argv, const std::string& pattern) {
  std::vector<char*> args;  // made before fork: the child only execs
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(fds[1], 1);  // dup2 clears close-on-exec on the copy
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  g_children.push_back(pid);
  Spawned s;
  s.pid = pid;
  FILE* out = ::fdopen(fds[0], "r");
  if (!pattern.empty()) {
    const std::regex re(pattern);
    char buf[4096];
    // A child that never prints its line is found by the caller's timeout
    // in run order; fgets returns when it exits.
    while (std::fgets(buf, sizeof buf, out)) {
      s.line = buf;
      if (std::regex_search(s.line, s.match, re)) break;
    }
    if (s.match.empty()) {
      throw std::runtime_error(argv[0] + " " + argv[1] + " exited before printing its endpoint");
    }
  }
  std::thread([out] {
    char buf[4096];
    while (std::fgets(buf, sizeof buf, out)) {
    }
    std::fclose(out);
  }).detach();
  return s;
}

// --- requests and replies ----------------------------------------------------------

// A PHOTONDATA request as frames 0 and 2..13 (frame 1, the metadata, is made
// per request), kept in memory once and sent zero-copy.
struct Request {
  std::string header = "PHOTONDATA";
  std::uint32_t photons = 0;
  std::vector<std::vector<char>> arrays;  // 11 float components, then flags
  std::size_t bytes() const {
    std::size_t n = header.size() + 8;
    for (const auto& a : arrays) n += a.size();
    return n;
  }
};

Request make_request(std::uint32_t photons) {
  const auto ev = bench::make_events(1, photons)[0];
  Request r;
  r.photons = static_cast<std::uint32_t>(ev.size());
  for (const auto& c : ev.f32) {
    r.arrays.emplace_back(reinterpret_cast<const char*>(c.data()),
                          reinterpret_cast<const char*>(c.data() + c.size()));
  }
  std::vector<std::uint32_t> flags = ev.flags;
  flags.resize(r.photons, 0);
  r.arrays.emplace_back(reinterpret_cast<const char*>(flags.data()),
                        reinterpret_cast<const char*>(flags.data() + flags.size()));
  return r;
}

void no_free(void*, void*) {}

void send_request(zmq::socket_t& s, const Request& r, std::uint32_t event_id) {
  s.send(zmq::message_t(), zmq::send_flags::sndmore);  // REQ-style delimiter (router.py wants it)
  s.send(zmq::buffer(r.header), zmq::send_flags::sndmore);
  const std::array<std::uint32_t, 2> meta = {event_id, r.photons};
  s.send(zmq::buffer(meta), zmq::send_flags::sndmore);
  for (std::size_t i = 0; i < r.arrays.size(); ++i) {
    zmq::message_t m(const_cast<char*>(r.arrays[i].data()), r.arrays[i].size(), no_free);
    s.send(m, i + 1 < r.arrays.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

std::vector<zmq::message_t> recv_all(zmq::socket_t& s) {
  std::vector<zmq::message_t> frames;
  for (;;) {
    zmq::message_t m;
    (void)s.recv(m);
    const bool more = m.more();
    frames.push_back(std::move(m));
    if (!more) return frames;
  }
}

// CPU seconds (user + system, all threads) a process has used so far.
double cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; rest >> field; ++i) {  // fields 14 and 15: utime, stime in ticks
    if (i == 14) utime = std::atof(field.c_str());
    if (i == 15) {
      stime = std::atof(field.c_str());
      break;
    }
  }
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

struct Load {
  double seconds = 0;
  std::uint64_t done = 0;
  std::uint64_t photons = 0;
  std::uint64_t bytes = 0;       // request bytes answered
  std::uint64_t no_workers = 0;  // NO_WORKERS replies (router.py refuses when none is idle)
  double cpu = 0;                // CPU seconds of the watched process (the broker) meanwhile
  double engine_cpu = 0;         // CPU seconds of the engine processes (server, workers)
  double per_second() const { return done / seconds; }
  double photons_per_second() const { return photons / seconds; }
  double gb_per_second() const { return bytes / seconds / 1e9; }
};

// Keeps `window` requests in flight on one DEALER for warm-up + `seconds`
// and counts what is answered in the measured part. A NO_WORKERS reply is
// counted and the request sent again under a new id.
Load drive(const std::string& endpoint, const Request& r, int window, double seconds,
           pid_t watch = -1, const std::vector<pid_t>& engines = {}) {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(endpoint);
  std::set<std::uint32_t> outstanding;  // event ids sent and not answered
  std::size_t in_flight = 0;            // requests without any reply yet
  std::uint32_t next_id = 1;
  auto send_one = [&] {
    send_request(s, r, next_id);
    outstanding.insert(next_id++);
    ++in_flight;
  };
  for (int i = 0; i < window; ++i) send_one();
  const double warmup = std::min(0.5, seconds / 4);
  const auto t_start = Clock::now();
  Clock::time_point t0{};
  bool measuring = false;
  Load load;
  const auto give_up = t_start + std::chrono::duration<double>(warmup + seconds + 120);
  while (in_flight > 0) {
    if (Clock::now() > give_up) throw std::runtime_error("no reply for 120 s from " + endpoint);
    zmq::pollitem_t item{static_cast<void*>(s), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(1000));
    if (!(item.revents & ZMQ_POLLIN)) continue;
    auto f = recv_all(s);
    // ["", header, event id, ...]
    if (f.size() < 2 || f[0].size() != 0) throw std::runtime_error("reply without a delimiter");
    const std::string header = f[1].to_string();
    const double now = seconds_since(t_start);
    if (!measuring && now >= warmup) {
      measuring = true;
      t0 = Clock::now();
      if (watch > 0) load.cpu = -cpu_seconds(watch);
      for (pid_t e : engines) load.engine_cpu -= cpu_seconds(e);
    }
    const bool sending = now < warmup + seconds;
    --in_flight;
    if (header == "NO_WORKERS") {  // router.py: no idle worker at that moment
      ++load.no_workers;           // (the reply names no event; its id stays in the set)
      if (sending) send_one();
      continue;
    }
    if (header != "SIM_COMPLETE" || f.size() < 3 || f[2].size() != 4) {
      throw std::runtime_error("unexpected reply " + header + " from " + endpoint);
    }
    std::uint32_t id;
    std::memcpy(&id, f[2].data(), 4);
    if (!outstanding.erase(id)) throw std::runtime_error("reply for an unknown event id");
    if (measuring) {
      ++load.done;
      load.photons += r.photons;
      load.bytes += r.bytes();
    }
    if (sending) send_one();
  }
  load.seconds = measuring ? seconds_since(t0) : 1e-9;
  if (watch > 0) load.cpu += cpu_seconds(watch);
  for (pid_t e : engines) load.engine_cpu += cpu_seconds(e);
  return load;
}

// --- the broker ------------------------------------------------------------------------

struct BrokerProcess {
  pid_t pid = -1;
  std::string frontend, backend;
};

BrokerProcess start_broker(const std::string& acheron, std::vector<std::string> extra = {}) {
  // No reply cache (every request here has its own event id anyway).
  std::vector<std::string> argv = {acheron,
                                   "--log-level",
                                   "warn",
                                   "broker",
                                   "--bind",
                                   "tcp://127.0.0.1:*",
                                   "--worker-bind",
                                   "tcp://127.0.0.1:*",
                                   "--dedupe-window",
                                   "0s"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto s = spawn(argv, R"(broker ready: client (tcp://[^\s,]+), worker (tcp://[^\s,]+))");
  return {s.pid, s.match[1].str(), s.match[2].str()};
}

// One request and its reply on a fresh DEALER (STATS, DETECTOR_INFO).
std::vector<zmq::message_t> ask(const std::string& endpoint, const std::string& header) {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(endpoint);
  s.send(zmq::message_t(), zmq::send_flags::sndmore);
  s.send(zmq::buffer(header), zmq::send_flags::none);
  zmq::pollitem_t item{static_cast<void*>(s), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, std::chrono::milliseconds(30000));
  if (!(item.revents & ZMQ_POLLIN)) throw std::runtime_error(header + ": no reply");
  auto f = recv_all(s);
  f.erase(f.begin());  // the delimiter
  return f;
}

// Waits (at most 60 s) until the broker has `n` usable workers.
void wait_workers(const std::string& frontend, std::size_t n) {
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  for (;;) {
    const auto f = ask(frontend, "STATS");
    const auto j = nlohmann::json::parse(f.at(1).to_string());
    std::size_t usable = 0;
    for (const auto& w : j.value("worker_list", nlohmann::json::array())) {
      const auto st = w.value("state", "");
      usable += st == "idle" || st == "busy";
    }
    if (usable >= n) return;
    if (Clock::now() > deadline) {
      throw std::runtime_error("only " + std::to_string(usable) + " of " + std::to_string(n) +
                               " workers registered within 60 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// router.py (CharonRouter.hh), stopped with the other children.
pid_t start_charon_router(const std::string& dir, int frontend, int backend) {
  const pid_t pid = bench::start_charon_router(dir, frontend, backend, true);
  g_children.push_back(pid);
  return pid;
}

// --- the stub worker ---------------------------------------------------------------

// Answers every PHOTONDATA at once with a valid 12-frame SIM_COMPLETE without
// hits, DETECTOR_INFO with `info` (the broker's own answer, so its probe
// passes; empty arrays without one), anything else with UNKNOWN_REQUEST.
// As a worker (DEALER connected to a backend) it sends READY and a HEARTBEAT
// every second; as a server (ROUTER bound) it answers clients directly.
int run_stub(bool worker, const std::string& endpoint, const std::string& info_from) {
  std::vector<std::string> info = {"DETECTOR_INFO", "", "", "", ""};
  if (!info_from.empty()) {
    auto f = ask(info_from, "DETECTOR_INFO");
    info.clear();
    for (auto& m : f) info.push_back(m.to_string());
  }
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, worker ? zmq::socket_type::dealer : zmq::socket_type::router);
  s.set(zmq::sockopt::linger, 0);
  if (worker) {
    s.connect(endpoint);
    s.send(zmq::buffer(&kReady, 1));
  } else {
    s.bind(endpoint);
    std::printf("stub serving on %s\n", s.get(zmq::sockopt::last_endpoint).c_str());
    std::fflush(stdout);
  }
  auto next_beat = Clock::now() + std::chrono::seconds(1);
  const std::string empty;
  for (;;) {
    if (worker && Clock::now() >= next_beat) {
      s.send(zmq::buffer(&kHeartbeat, 1));
      next_beat = Clock::now() + std::chrono::seconds(1);
    }
    zmq::pollitem_t item{static_cast<void*>(s), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(200));
    if (!(item.revents & ZMQ_POLLIN)) continue;
    auto f = recv_all(s);
    if (f.size() == 1) continue;  // the broker's HEARTBEAT
    std::size_t d = 0;            // the delimiter ends the route
    while (d < f.size() && f[d].size() != 0) ++d;
    if (d + 1 >= f.size()) continue;
    const std::string header = f[d + 1].to_string();
    std::vector<std::string> reply;
    if (header == "PHOTONDATA" && f.size() > d + 2 && f[d + 2].size() >= 4) {
      reply = {"SIM_COMPLETE", f[d + 2].to_string().substr(0, 4)};
      reply.resize(12);  // ten empty hit arrays
    } else if (header == "DETECTOR_INFO") {
      reply = info;
    } else {
      reply = {"UNKNOWN_REQUEST"};
    }
    for (std::size_t i = 0; i <= d; ++i) s.send(f[i], zmq::send_flags::sndmore);
    for (std::size_t i = 0; i < reply.size(); ++i) {
      s.send(zmq::buffer(reply[i]),
             i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
}

pid_t start_stub_worker(const std::string& self, const std::string& backend,
                        const std::string& info_from) {
  std::vector<std::string> argv = {self, "--stub-worker", backend};
  if (!info_from.empty()) {
    argv.push_back("--info-from");
    argv.push_back(info_from);
  }
  return spawn(argv, "").pid;
}

// --- the report --------------------------------------------------------------------------

void row(const char* what, const std::string& value, const std::string& ratio,
         const std::string& note = "") {
  std::printf("  %-52s %18s %10s  %s\n", what, value.c_str(), ratio.c_str(), note.c_str());
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2.0;
  std::uint32_t photons = 100000;
  std::uint32_t big_photons = 1000000;
  int max_workers = 4;
  std::string acheron;
  std::string charon_router;
  std::string stub_worker, stub_serve, info_from;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const std::string v = argv[i + 1];
    if (a == "--seconds")
      seconds = std::atof(v.c_str());
    else if (a == "--photons")
      photons = std::strtoul(v.c_str(), nullptr, 10);
    else if (a == "--big-photons")
      big_photons = std::strtoul(v.c_str(), nullptr, 10);
    else if (a == "--max-workers")
      max_workers = std::atoi(v.c_str());
    else if (a == "--acheron")
      acheron = v;
    else if (a == "--charon-router")
      charon_router = v;
    else if (a == "--stub-worker")
      stub_worker = v;
    else if (a == "--stub-serve")
      stub_serve = v;
    else if (a == "--info-from")
      info_from = v;
    else {
      std::fprintf(stderr, "bench_broker_scaling: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (!stub_worker.empty()) return run_stub(true, stub_worker, info_from);
  if (!stub_serve.empty()) return run_stub(false, stub_serve, "");

  char self[4096] = {};
  if (::readlink("/proc/self/exe", self, sizeof self - 1) <= 0) return 2;
  if (acheron.empty()) {
    // build/<preset>/bench/bench_broker_scaling -> build/<preset>/apps/acheron/acheron
    std::string dir(self);
    dir = dir.substr(0, dir.rfind('/'));
    acheron = dir + "/../apps/acheron/acheron";
  }
  if (::access(acheron.c_str(), X_OK) != 0) {
    std::fprintf(stderr,
                 "bench_broker_scaling: %s is not an executable (the acheron program starts the "
                 "broker and workers) build it or give --acheron PATH\n",
                 acheron.c_str());
    return 2;
  }
  ::signal(SIGINT, on_signal);
  ::signal(SIGTERM, on_signal);
  ::signal(SIGPIPE, SIG_IGN);

  const std::string load_before = load_average();
  const std::time_t started = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&started));
  const Request event = make_request(photons);
  const Request tiny = make_request(1);
  const Request big = make_request(big_photons);
  const std::string w1 = "1";  // engine threads per real worker

  try {
    // 1 and 2: real workers against `photon serve` direct.
    auto serve = spawn({acheron, "--log-level", "warn", "photon", "serve", "--bind",
                        "tcp://127.0.0.1:*", "--threads", w1, "--seed", "1"},
                       R"(photon serve ready: charon (tcp://[^\s,]+))");
    const std::string direct = serve.match[1].str();
    const Load direct_events = drive(direct, event, 2, seconds, -1, {serve.pid});
    const Load direct_tiny1 = drive(direct, tiny, 1, seconds);
    const Load direct_tiny32 = drive(direct, tiny, 32, seconds);
    stop_one(serve.pid);

    auto broker = start_broker(acheron);
    std::vector<std::pair<int, Load>> scaling;
    Load broker_tiny1, broker_tiny32;
    std::vector<pid_t> workers;
    for (int n = 1; n <= max_workers; n *= 2) {
      while (static_cast<int>(workers.size()) < n) {
        workers.push_back(spawn({acheron, "--log-level", "warn", "photon", "worker", "--connect",
                                 broker.backend, "--threads", w1, "--seed", "1"},
                                "")
                              .pid);
      }
      wait_workers(broker.frontend, n);
      scaling.emplace_back(n, drive(broker.frontend, event, 2 * n, seconds, broker.pid, workers));
      if (n == 1) {
        broker_tiny1 = drive(broker.frontend, tiny, 1, seconds);
        broker_tiny32 = drive(broker.frontend, tiny, 32, seconds);
      }
    }
    stop_children();
    // The same worker may batch what waits, as `photon serve` does, when the
    // broker gives it more than one request at a time.
    Load broker_tiny32_prefetch;
    {
      auto b = start_broker(acheron, {"--worker-prefetch", "32"});
      spawn({acheron, "--log-level", "warn", "photon", "worker", "--connect", b.backend,
             "--threads", w1, "--seed", "1"},
            "");
      wait_workers(b.frontend, 1);
      broker_tiny32_prefetch = drive(b.frontend, tiny, 32, seconds);
      stop_children();
    }

    // 3: stub workers.
    auto stub =
        spawn({self, "--stub-serve", "tcp://127.0.0.1:*"}, R"(stub serving on (tcp://\S+))");
    const Load stub_tiny = drive(stub.match[1].str(), tiny, 32, seconds);
    const Load stub_big = drive(stub.match[1].str(), big, 2, seconds);
    stop_one(stub.pid);

    // The broker (or router.py) between the client and the stubs; its CPU
    // time is measured alongside.
    struct StubRun {
      std::string label;
      Load tiny, tiny_narrow, big;  // tiny_narrow: one request in flight per stub
    };
    std::vector<StubRun> stub_runs;
    auto broker_with_stubs = [&](int n, std::vector<std::string> extra, const std::string& label) {
      auto b = start_broker(acheron, extra);
      for (int i = 0; i < n; ++i) start_stub_worker(self, b.backend, b.frontend);
      wait_workers(b.frontend, n);
      StubRun r{label, drive(b.frontend, tiny, 16 * n, seconds, b.pid),
                drive(b.frontend, tiny, n, seconds, b.pid),
                drive(b.frontend, big, 2, seconds, b.pid)};
      stop_children();
      stub_runs.push_back(r);
    };
    broker_with_stubs(1, {}, "broker -> 1 stub");
    broker_with_stubs(max_workers, {}, "broker -> " + std::to_string(max_workers) + " stubs");
    broker_with_stubs(max_workers, {"--worker-prefetch", "4"},
                      "broker -> " + std::to_string(max_workers) + " stubs, prefetch 4");

    // 4: ChAR0N's router.py with the same stubs. It refuses (NO_WORKERS)
    // when no worker is idle, so the window is one request per stub.
    StubRun charon{};
    if (!charon_router.empty()) {
      const int fport = bench::free_port(), bport = bench::free_port();
      const pid_t router = start_charon_router(charon_router, fport, bport);
      const std::string front = "tcp://127.0.0.1:" + std::to_string(fport);
      for (int i = 0; i < max_workers; ++i) {
        start_stub_worker(self, "tcp://127.0.0.1:" + std::to_string(bport), "");
      }
      std::this_thread::sleep_for(std::chrono::seconds(2));  // READY reaches it (no STATS)
      charon = {"router.py -> " + std::to_string(max_workers) + " stubs", Load{},
                drive(front, tiny, max_workers, seconds, router),
                drive(front, big, 2, seconds, router)};
      stop_children();
    }

    // The report.
    std::printf("broker scaling benchmark, %s, %u cores, load average before %s, after %s\n", date,
                std::thread::hardware_concurrency(), load_before.c_str(), load_average().c_str());
    std::printf("%.1f s per measurement after a warm-up; one DEALER client, fixed window\n\n",
                seconds);
    std::printf("1. real workers (1 engine thread each), %u-photon events, window 2 per worker\n",
                photons);
    row("path", "photons/s", "ratio", "");
    const double d = direct_events.photons_per_second();
    const double d_cpu = direct_events.photons / direct_events.engine_cpu;
    row("client -> photon serve --threads 1 (direct)", fmt("%.4g", d), "1.000",
        fmt("engine CPU %.2f s/s, ", direct_events.engine_cpu / direct_events.seconds) +
            fmt("%.4g photons per engine CPU s", d_cpu));
    for (const auto& [n, l] : scaling) {
      const std::string what = "client -> broker -> " + std::to_string(n) + " worker(s)";
      row(what.c_str(), fmt("%.4g", l.photons_per_second()),
          fmt("%.3f", l.photons_per_second() / d),
          fmt("engine CPU %.2f s/s, ", l.engine_cpu / l.seconds) +
              fmt("per engine CPU s %.3f of direct, ", l.photons / l.engine_cpu / d_cpu) +
              fmt("broker CPU %.3f s/s", l.cpu / l.seconds));
    }
    std::printf("\n2. cost per request: 1-photon events, one real worker\n");
    row("path", "requests/s", "ratio", "");
    row("direct, 1 in flight", fmt("%.0f", direct_tiny1.per_second()), "1.000");
    row("broker, 1 in flight", fmt("%.0f", broker_tiny1.per_second()),
        fmt("%.3f", broker_tiny1.per_second() / direct_tiny1.per_second()),
        fmt("+%.0f us per request",
            1e6 * (1 / broker_tiny1.per_second() - 1 / direct_tiny1.per_second())));
    row("direct, 32 in flight", fmt("%.0f", direct_tiny32.per_second()), "1.000");
    row("broker, 32 in flight", fmt("%.0f", broker_tiny32.per_second()),
        fmt("%.3f", broker_tiny32.per_second() / direct_tiny32.per_second()),
        "one request at a time on the worker");
    row("broker --worker-prefetch 32, 32 in flight",
        fmt("%.0f", broker_tiny32_prefetch.per_second()),
        fmt("%.3f", broker_tiny32_prefetch.per_second() / direct_tiny32.per_second()),
        "the worker batches what waits, as photon serve does");
    std::printf("\n3. ceiling with stub workers (answer at once, no simulation)\n");
    std::printf(
        "   tiny: 1-photon events, window 16 per stub (w16n), 1 per stub (w1n) or 32 direct;\n"
        "   big: %u-photon events (%.1f MB), window 2; CPU: the broker's (router.py's) CPU\n"
        "   seconds per second, and the rate per CPU second of it\n",
        big_photons, big.bytes() / 1e6);
    std::printf("  %-44s %12s %7s %6s %14s\n", "path", "rate", "ratio", "CPU", "per CPU-s");
    auto stub_row = [&](const std::string& what, const Load& l, const Load& ref, bool bytes) {
      const double rate = bytes ? l.gb_per_second() : l.per_second();
      const double ref_rate = bytes ? ref.gb_per_second() : ref.per_second();
      const std::string unit = bytes ? " GB/s" : " req/s";
      std::string cpu = "", per_cpu = "";
      if (l.cpu > 0) {
        cpu = fmt("%.2f", l.cpu / l.seconds);
        per_cpu = bytes ? fmt("%.3f GB", l.bytes / l.cpu / 1e9) : fmt("%.0f req", l.done / l.cpu);
      }
      std::printf("  %-44s %12s %7s %6s %14s\n", what.c_str(),
                  (fmt(bytes ? "%.3f" : "%.0f", rate) + unit).c_str(),
                  fmt("%.3f", rate / ref_rate).c_str(), cpu.c_str(), per_cpu.c_str());
    };
    stub_row("stub direct, tiny, w32", stub_tiny, stub_tiny, false);
    for (const auto& r : stub_runs) {
      stub_row(r.label + ", tiny, w16n", r.tiny, stub_tiny, false);
      stub_row(r.label + ", tiny, w1n", r.tiny_narrow, stub_tiny, false);
    }
    if (charon.tiny_narrow.done) {
      stub_row(charon.label + ", tiny, w1n", charon.tiny_narrow, stub_tiny, false);
    }
    stub_row("stub direct, big", stub_big, stub_big, true);
    for (const auto& r : stub_runs) stub_row(r.label + ", big", r.big, stub_big, true);
    if (charon.big.done) stub_row(charon.label + ", big", charon.big, stub_big, true);
    if (charon.big.done) {
      const auto& b = stub_runs[1];
      std::printf(
          "  broker : router.py (%d stubs, prefetch 1): tiny w1n %.2f, big %.2f; "
          "per CPU second: tiny %.2f, big %.2f; router.py NO_WORKERS: %llu, %llu\n",
          max_workers, b.tiny_narrow.per_second() / charon.tiny_narrow.per_second(),
          b.big.gb_per_second() / charon.big.gb_per_second(),
          (b.tiny_narrow.done / b.tiny_narrow.cpu) /
              (charon.tiny_narrow.done / charon.tiny_narrow.cpu),
          (b.big.bytes / b.big.cpu) / (charon.big.bytes / charon.big.cpu),
          static_cast<unsigned long long>(charon.tiny_narrow.no_workers),
          static_cast<unsigned long long>(charon.big.no_workers));
    }
  } catch (const std::exception& e) {
    stop_children();
    std::fprintf(stderr, "bench_broker_scaling: %s\n", e.what());
    return 1;
  }
  stop_children();
  return 0;
}
