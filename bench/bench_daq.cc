// DaqData server benchmark, one run, everything on this machine:
//   1. throughput: images/s delivered to 1, 8 and 32 concurrent StreamImages
//      clients with update interval 0 (every frame requested), while a
//      producer keeps the ingest queue full with img16 and ph256 frames of
//      8 modules;
//   2. latency: source -> client (frame stamped at creation, compared with
//      the client's clock on receipt) at 1 kHz ingest, percentiles for 1, 8
//      and 32 clients.
// First, the per-frame ingest encoding on its own: a frame straight to the
// response's wire bytes (encode_frame_response) against the protobuf path
// (header JSON -> Struct, PanoImage, serialize), side by side in
// interleaved rounds, with the ratio.
// Clients are real gRPC clients (C++ stubs, full protobuf parsing of every
// response) over the server's unix socket or TCP loopback.
//
// Usage: bench_daq [--seconds S] [--tcp] [--clients 1,8,32] [--encode-only]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "acheron/core/Clock.hh"
#include "acheron/core/Log.hh"
#include "acheron/daq/Client.hh"
#include "acheron/daq/FrameEncoder.hh"
#include "acheron/daq/ImageStore.hh"
#include "acheron/daq/Server.hh"

using namespace acheron;
namespace pff = wire::pff;

namespace {

daq::RawFrame make_frame(std::uint32_t module, pff::Product p, std::uint32_t n) {
  daq::RawFrame f;
  f.module_id = module;
  f.product = p;
  f.header = pff::format_header(p, pff::stamp_for(wall_time_ns(), n), n % 4);
  f.pixels.resize(pff::info(p).image_bytes());
  for (std::size_t i = 0; i < f.pixels.size(); ++i) f.pixels[i] = static_cast<char>(i * 7 + n);
  f.file = "bench.pff";
  f.frame_number = n;
  return f;
}

// Source time of a received image: quabo stamps (tv_sec + pkt_nsec).
std::int64_t source_ns(const daqdata::PanoImage& img) {
  const auto& h = img.header().fields();
  const google::protobuf::Struct* s = &img.header();
  if (auto it = h.find("quabo_0"); it != h.end()) s = &it->second.struct_value();
  const auto& f = s->fields();
  return static_cast<std::int64_t>(f.at("tv_sec").number_value()) * 1'000'000'000 +
         static_cast<std::int64_t>(f.at("pkt_nsec").number_value());
}

// Median µs per frame of each encoding over interleaved rounds.
void bench_encoding() {
  std::printf("ingest encoding, us per frame (median of 15 interleaved rounds)\n");
  std::printf("%8s %10s %10s %8s\n", "product", "direct", "protobuf", "ratio");
  for (auto p : {pff::Product::img16, pff::Product::ph256}) {
    std::vector<daq::RawFrame> frames;
    for (std::uint32_t n = 0; n < 64; ++n) frames.push_back(make_frame(n % 8 + 1, p, n));
    constexpr int kPerRound = 2000;
    std::vector<double> direct, general;
    std::size_t sink = 0;
    for (int round = 0; round < 15; ++round) {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < kPerRound; ++i) {
        acheron::Buffer bytes;
        if (!daq::encode_frame_response(frames[i % frames.size()], &bytes)) std::abort();
        sink += bytes.size();
      }
      auto t1 = std::chrono::steady_clock::now();
      for (int i = 0; i < kPerRound; ++i) {
        daqdata::PanoImage image;
        if (!daq::frame_to_image(frames[i % frames.size()], &image)) std::abort();
        sink += daq::encode_response(image).size();
      }
      auto t2 = std::chrono::steady_clock::now();
      direct.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / kPerRound);
      general.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count() / kPerRound);
    }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    const double d = median(direct), g = median(general);
    std::printf("%8s %10.2f %10.2f %7.1fx\n", std::string(pff::info(p).name).c_str(), d, g, g / d);
    if (sink == 0) std::abort();
  }
}

struct Clients {
  std::vector<std::unique_ptr<daq::Client>> clients;
  std::vector<std::thread> threads;
  std::atomic<std::uint64_t> received{0};
  std::atomic<bool> counting{false};
  std::vector<std::vector<double>> latency_ms;

  Clients(const std::string& target, int n, bool record_latency) : latency_ms(n) {
    for (int i = 0; i < n; ++i) clients.push_back(std::make_unique<daq::Client>(target));
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([this, i, record_latency] {
        daq::StreamOptions o;
        o.update_interval_seconds = 0;
        clients[i]->stream(o, [&](daqdata::StreamImagesResponse& r) {
          if (counting.load(std::memory_order_relaxed)) {
            received.fetch_add(1, std::memory_order_relaxed);
            if (record_latency)
              latency_ms[i].push_back((wall_time_ns() - source_ns(r.pano_image())) / 1e6);
          }
          return true;
        });
      });
    }
  }
  void stop() {
    for (auto& c : clients) c->cancel();
    for (auto& t : threads) t.join();
  }
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3;
  bool tcp = false;
  std::vector<int> counts{1, 8, 32};
  bool encode_only = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = std::atof(argv[++i]);
    else if (!std::strcmp(argv[i], "--tcp"))
      tcp = true;
    else if (!std::strcmp(argv[i], "--encode-only"))
      encode_only = true;
    else if (!std::strcmp(argv[i], "--clients") && i + 1 < argc) {
      counts.clear();
      for (char* t = std::strtok(argv[++i], ","); t; t = std::strtok(nullptr, ","))
        counts.push_back(std::atoi(t));
    } else {
      std::fprintf(stderr,
                   "usage: bench_daq [--seconds S] [--tcp] [--clients 1,8,32] [--encode-only]\n");
      return 2;
    }
  }
  log::set_level("warn");
  bench_encoding();
  if (encode_only) return 0;
  const auto sock = std::filesystem::temp_directory_path() /
                    ("acheron_bench_daq_" + std::to_string(::getpid()) + ".sock");
  auto config = daq::parse_server_config(daq::default_server_config_json());
  config.init_from_default = false;
  config.tcp_address = tcp ? "127.0.0.1:0" : "";
  config.unix_domain_socket = "unix://" + sock.string();
  config.min_hp_io_update_interval_seconds = 0;
  config.sim.sim_module_ids.clear();  // the benchmark is the only producer
  daq::Server server(config);
  server.start();
  const std::string target =
      tcp ? "127.0.0.1:" + std::to_string(server.tcp_port()) : config.unix_domain_socket;
  daq::HpIoConfig hp;
  hp.simulate_daq = true;
  hp.update_interval_seconds = 0;
  if (auto r = server.init_hp_io(hp); !r.success) {
    std::fprintf(stderr, "init failed: %s\n", r.message.c_str());
    return 1;
  }
  std::printf("DaqData benchmark over %s, %.1f s per case, %u hardware threads\n",
              tcp ? "TCP loopback" : "the unix socket", seconds,
              std::thread::hardware_concurrency());

  // ---- 1. throughput
  std::printf("\nthroughput (update interval 0, producer saturating the ingest queue)\n");
  std::printf("%8s %14s %16s %14s %12s\n", "clients", "images/s", "images/s/client", "ingested/s",
              "vs 1 client");
  double one_client = 0;
  for (int n : counts) {
    Clients clients(target, n, false);
    std::atomic<bool> producing{true};
    std::atomic<std::uint64_t> produced{0};
    std::thread producer([&] {
      std::uint32_t k = 0;
      while (producing) {
        const auto module = 1 + k % 8;
        auto f = make_frame(module, (k / 8) % 2 ? pff::Product::ph256 : pff::Product::img16, k);
        while (producing && server.store().push(f) == daq::PushResult::full)
          std::this_thread::yield();
        ++k;
        produced.fetch_add(1, std::memory_order_relaxed);
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // connect and warm up
    const auto ingested0 = server.store().stats().ingested;
    clients.counting = true;
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    clients.counting = false;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double rate = clients.received / dt;
    const double ingest = (server.store().stats().ingested - ingested0) / dt;
    producing = false;
    producer.join();
    clients.stop();
    if (n == counts.front()) one_client = rate;
    std::printf("%8d %14.0f %16.0f %14.0f %11.2fx\n", n, rate, rate / n, ingest,
                one_client > 0 ? rate / one_client : 0.0);
  }

  // ---- 2. latency at 1 kHz ingest
  std::printf("\nlatency source -> client at 1 kHz ingest (img16, 4 modules), ms\n");
  std::printf("%8s %10s %8s %8s %8s %8s %10s\n", "clients", "samples", "p50", "p90", "p99", "max",
              "p99 < 5");
  for (int n : counts) {
    Clients clients(target, n, true);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::atomic<bool> producing{true};
    std::thread producer([&] {
      auto next = std::chrono::steady_clock::now();
      std::uint32_t k = 0;
      while (producing) {
        (void)server.store().push(make_frame(1 + k % 4, pff::Product::img16, k));
        ++k;
        next += std::chrono::microseconds(1000);
        std::this_thread::sleep_until(next);
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    clients.counting = true;
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    clients.counting = false;
    producing = false;
    producer.join();
    clients.stop();
    std::vector<double> all;
    for (auto& v : clients.latency_ms) all.insert(all.end(), v.begin(), v.end());
    const double p50 = percentile(all, 0.5), p90 = percentile(all, 0.9),
                 p99 = percentile(all, 0.99), mx = all.empty() ? 0 : all.back();
    std::printf("%8d %10zu %8.3f %8.3f %8.3f %8.3f %10s\n", n, all.size(), p50, p90, p99, mx,
                p99 < 5 ? "yes" : "NO");
  }
  server.shutdown();
  return 0;
}
