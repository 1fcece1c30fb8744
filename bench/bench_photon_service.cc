// End-to-end photon service benchmark, side by side in one run:
//   1. the in-process engine (PhotonService::simulate) on N events,
//   2. the same events through `photon serve` (client -> server, loopback TCP),
//   3. the same events through the broker (client -> broker -> worker),
//   4. tiny requests: round trips/s direct vs through the broker,
//   5. optionally, the same through ChAR0N's own Python router (router.py,
//      run with Debian's python3-zmq from a checkout given by
//      --charon-router DIR) in front of the same worker,
//   6. the queues' scheduling: fair turns between clients (FairQueue, what
//      the broker and photon serve use) against a FIFO (std::deque), per
//      request queued and taken, 1024 waiting from 64 sockets on 8 hosts.
// Prints photons/s and the ratios the service is held to:
//   served / in-process >= 0.9, broker / direct >= 0.9 for 1 M-photon events.
//
// Usage: bench_photon_service [--events N] [--photons N] [--threads N] [--tiny N]
//                             [--charon-router DIR]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "BenchEvents.hh"
#include "CharonRouter.hh"
#include "acheron/broker/Broker.hh"
#include "acheron/charon/FairQueue.hh"
#include "acheron/core/Log.hh"
#include "acheron/optics/Sources.hh"
#include "acheron/photon/Client.hh"
#include "acheron/photon/Server.hh"
#include "acheron/photon/Worker.hh"

using namespace acheron;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The events as wire frames decoded back into PhotonData (what a server sees).
std::vector<wire::charon::PhotonData> as_requests(const std::vector<photon::EventPhotons>& ev) {
  std::vector<wire::charon::PhotonData> out;
  for (const auto& e : ev) {
    auto frames = wire::charon::encode_photon_data(e.event_id, e.f32, &e.flags);
    auto r = wire::charon::decode_request(frames);
    out.push_back(std::get<wire::charon::Request>(r).photons);
  }
  return out;
}

template <class F>
double best_of(int reps, F&& f) {
  double best = 1e300;
  for (int i = 0; i < reps; ++i) best = std::min(best, f());
  return best;
}

// Seconds per request pushed and popped with 1024 requests waiting from 64
// sockets on 8 hosts (the default bounds' worst case): fair turns or FIFO.
double queue_seconds_per_request(bool fair) {
  constexpr int kWaiting = 1024, kRounds = 200;
  std::vector<charon::ClientId> clients;
  for (int h = 0; h < 8; ++h) {
    for (int c = 0; c < 8; ++c) {
      clients.push_back({"10.0.0." + std::to_string(h), "sock" + std::to_string(c)});
    }
  }
  charon::FairQueue<std::uint64_t> fq;
  std::deque<std::uint64_t> fifo;
  std::uint64_t next = 0, sum = 0;
  auto push = [&] {
    const auto& c = clients[next % clients.size()];
    if (fair) {
      fq.push(c, charon::request_cost(1000 + next % 7 * 1000), next);
    } else {
      fifo.push_back(next);
    }
    ++next;
  };
  auto pop = [&] {
    if (fair) {
      sum += fq.pop();
    } else {
      sum += fifo.front();
      fifo.pop_front();
    }
  };
  for (int i = 0; i < kWaiting; ++i) push();
  return best_of(3, [&] {
    const auto t0 = Clock::now();
    for (int r = 0; r < kRounds * kWaiting; ++r) {
      pop();
      push();
    }
    const double s = seconds_since(t0) / (kRounds * kWaiting);
    if (sum == 42) std::printf(" ");  // keeps the work
    return s;
  });
}

}  // namespace

int main(int argc, char** argv) {
  int events = 6;
  std::uint32_t photons = 1000000;
  std::size_t threads = 2;
  int tiny = 2000;
  std::string charon_router;  // a checkout holding router.py and config.py
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--events")) events = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--photons")) photons = std::strtoul(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--threads")) threads = std::strtoul(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--tiny")) tiny = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--charon-router")) charon_router = argv[i + 1];
  }
  log::set_level("warn");
  auto detector = std::make_shared<const optics::Detector>(optics::Detector::default_detector());
  const auto events_v = bench::make_events(events, photons);
  const auto requests = as_requests(events_v);
  const double total_photons = double(events) * photons;
  const int reps = 3;

  // 1. In-process engine, one event at a time (as a server handles them).
  photon::PhotonService service(detector, {.threads = threads, .seed = 1});
  const double t_engine = best_of(reps, [&] {
    const auto t0 = Clock::now();
    for (const auto& r : requests) service.simulate(r);
    return seconds_since(t0);
  });

  // 2. Through `photon serve` on loopback.
  photon::ServerOptions so;
  so.bind = "tcp://127.0.0.1:*";
  so.service = {.threads = threads, .seed = 1};
  so.max_concurrent = 1;
  so.dedupe_window = std::chrono::seconds(0);
  photon::Server server(detector, so);
  std::thread server_thread([&] { server.run(); });
  photon::Client direct({.endpoint = server.endpoint(), .timeout = std::chrono::seconds(120)});
  const double t_served = best_of(reps, [&] {
    const auto t0 = Clock::now();
    for (const auto& e : events_v) direct.simulate(e);
    return seconds_since(t0);
  });

  // 3. Through the broker to one worker with the same engine threads.
  broker::BrokerOptions bo;
  bo.frontend = "tcp://127.0.0.1:*";
  bo.backend = "tcp://127.0.0.1:*";
  bo.router.dedupe_window = std::chrono::seconds(0);
  broker::Broker broker(bo);
  std::thread broker_thread([&] { broker.run(); });
  photon::WorkerOptions wo;
  wo.connect = broker.endpoints().backend;
  wo.service = {.threads = threads, .seed = 1};
  photon::Worker worker(detector, wo);
  std::thread worker_thread([&] { worker.run(); });
  photon::Client via(
      {.endpoint = broker.endpoints().frontend, .timeout = std::chrono::seconds(120)});
  via.detector_info();  // waits until the worker is registered and probed
  const double t_broker = best_of(reps, [&] {
    const auto t0 = Clock::now();
    for (const auto& e : events_v) via.simulate(e);
    return seconds_since(t0);
  });

  // 4. Tiny requests (one photon): round trips per second, same REQ-per-call
  //    client as RAT-PAC would use, direct and through the broker.
  const auto one = bench::make_events(1, 1)[0];
  auto round_trips = [&](photon::Client& c) {
    return best_of(reps, [&] {
      const auto t0 = Clock::now();
      for (int i = 0; i < tiny; ++i) c.simulate(one);
      return seconds_since(t0);
    });
  };
  const double t_tiny_direct = round_trips(direct);
  const double t_tiny_broker = round_trips(via);

  // 5. ChAR0N's Python router in front of a worker like ours.
  double t_charon = 0, t_tiny_charon = 0;
  if (!charon_router.empty()) {
    zmq::context_t ctx;
    const int fport = bench::free_port(), bport = bench::free_port();
    const pid_t router = bench::start_charon_router(charon_router, fport, bport, false);
    photon::WorkerOptions cwo = wo;
    cwo.connect = "tcp://127.0.0.1:" + std::to_string(bport);
    photon::Worker cworker(detector, cwo);
    std::thread cworker_thread([&] { cworker.run(); });
    photon::Client cc({.endpoint = "tcp://127.0.0.1:" + std::to_string(fport),
                       .timeout = std::chrono::seconds(120)});
    for (int attempt = 0; attempt < 50; ++attempt) {  // until the worker has registered
      try {
        cc.simulate(one);
        break;
      } catch (const std::exception&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    t_charon = best_of(reps, [&] {
      const auto t0 = Clock::now();
      for (const auto& e : events_v) cc.simulate(e);
      return seconds_since(t0);
    });
    t_tiny_charon = round_trips(cc);
    cworker.stop();
    cworker_thread.join();
    ::kill(router, SIGKILL);
    ::waitpid(router, nullptr, 0);
  }

  // 6. Scheduling cost.
  const double q_fifo = queue_seconds_per_request(false);
  const double q_fair = queue_seconds_per_request(true);

  worker.stop();
  broker.stop();
  server.stop();
  worker_thread.join();
  broker_thread.join();
  server_thread.join();

  std::printf("photon service benchmark: %d events x %u photons, %zu engine threads, best of %d\n",
              events, photons, threads, reps);
  std::printf("%-40s %14s %10s\n", "path", "photons/s", "ratio");
  const double eng = total_photons / t_engine;
  std::printf("%-40s %14.4g %10s\n", "in-process engine", eng, "1.000");
  std::printf("%-40s %14.4g %10.3f   (target >= 0.9 of in-process)\n", "client -> photon serve",
              total_photons / t_served, t_engine / t_served);
  std::printf("%-40s %14.4g %10.3f   (target >= 0.9 of direct)\n", "client -> broker -> worker",
              total_photons / t_broker, t_served / t_broker);
  std::printf("%-40s %14.4g %10s\n", "tiny requests direct (round trips/s)", tiny / t_tiny_direct,
              "1.000");
  std::printf("%-40s %14.4g %10.3f\n", "tiny requests via broker (round trips/s)",
              tiny / t_tiny_broker, t_tiny_direct / t_tiny_broker);
  if (t_charon > 0) {
    std::printf("%-40s %14.4g %10.3f   (vs direct; broker / ChAR0N router = %.3f)\n",
                "client -> ChAR0N router.py -> worker", total_photons / t_charon,
                t_served / t_charon, t_charon / t_broker);
    std::printf("%-40s %14.4g %10.3f   (broker / ChAR0N router = %.3f)\n",
                "tiny requests via ChAR0N router.py", tiny / t_tiny_charon,
                t_tiny_direct / t_tiny_charon, t_tiny_charon / t_tiny_broker);
  }
  std::printf("%-40s %14.4g %10s\n", "queue, FIFO (us a request, 1024 waiting)", q_fifo * 1e6,
              "1.000");
  std::printf("%-40s %14.4g %10.1f   (%.4f of a tiny round trip)\n",
              "queue, fair turns (us a request)", q_fair * 1e6, q_fair / q_fifo,
              q_fair / (t_tiny_direct / tiny));
  return 0;
}
