// Load generator for a DaqData server in another process (acheron's or the
// upstream Python one): the same producer and the same clients for both, so
// that the server is the thing measured.
//
// Producer: plays Hashpipe on the server's data sockets (2-byte big-endian
// module id + one PFF frame per record), non-blocking like Hashpipe (a full
// socket drops the frame), at a fixed total rate, round-robin over the given
// modules and data products. Every header carries the host time at which the
// frame was written (tv_sec + pkt_nsec, consistent White-Rabbit stamps), so a
// client can compute source -> client latency.
//
// Clients: N StreamImages calls spread over K channels, on gRPC's callback
// API with raw byte buffers: a received response is counted and, for
// latency, only walked (protobuf wire format) for module_id and the time
// stamp; no full parsing, so the clients cost little next to the server.
//
// Prints one JSON object: received, rate, per-stream minimum, latency
// percentiles (ms), frames written/dropped, this process's CPU seconds, and
// in latency mode the machine's one-hop wake-up delay meanwhile (HopProbe).
//
// Usage: bench_daq_load --target unix:///path --socket-template /tmp/x.dp_{dp_name}.sock
//          [--streams 8] [--channels 4] [--seconds 3] [--warmup 0.5] [--rate 8000]
//          [--products img16,ph256] [--modules 11,12,13,14] [--interval 0]
#include <fcntl.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "acheron/core/Clock.hh"
#include "acheron/daqdata.pb.h"
#include "acheron/wire/Pff.hh"

using namespace acheron;
namespace pff = wire::pff;

namespace {

// ------------------------------------------------------------ wire walking

struct WireReader {
  const std::uint8_t* p;
  const std::uint8_t* end;
  bool varint(std::uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
      const std::uint8_t b = *p++;
      *v |= std::uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  // Next field: number, wire type, and for LEN fields the payload.
  bool next(std::uint32_t* field, std::uint32_t* type, std::string_view* len_payload,
            std::uint64_t* scalar) {
    std::uint64_t key = 0;
    if (p >= end || !varint(&key)) return false;
    *field = static_cast<std::uint32_t>(key >> 3);
    *type = static_cast<std::uint32_t>(key & 7);
    switch (*type) {
      case 0:
        return varint(scalar);
      case 1:
        if (end - p < 8) return false;
        std::memcpy(scalar, p, 8);
        p += 8;
        return true;
      case 2: {
        std::uint64_t n = 0;
        if (!varint(&n) || std::uint64_t(end - p) < n) return false;
        *len_payload = {reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)};
        p += n;
        return true;
      }
      case 5:
        if (end - p < 4) return false;
        p += 4;
        return true;
      default:
        return false;
    }
  }
};

WireReader reader_of(std::string_view s) {
  auto* b = reinterpret_cast<const std::uint8_t*>(s.data());
  return {b, b + s.size()};
}

// google.protobuf.Struct: the number field `key`, or a nested struct.
void walk_struct(std::string_view s, double* tv_sec, double* pkt_nsec, int depth) {
  auto r = reader_of(s);
  std::uint32_t f, t;
  std::string_view entry;
  std::uint64_t v;
  while (r.next(&f, &t, &entry, &v)) {
    if (f != 1 || t != 2) continue;
    auto e = reader_of(entry);
    std::string_view key, value, tmp;
    while (e.next(&f, &t, &tmp, &v))
      if (t == 2) (f == 1 ? key : value) = tmp;
    auto val = reader_of(value);
    std::string_view nested;
    while (val.next(&f, &t, &nested, &v)) {
      if (f == 2 && t == 1) {
        double d;
        std::memcpy(&d, &v, 8);
        if (key == "tv_sec") *tv_sec = d;
        if (key == "pkt_nsec") *pkt_nsec = d;
      } else if (f == 5 && t == 2 && depth == 0 && key == "quabo_0") {
        walk_struct(nested, tv_sec, pkt_nsec, 1);
      }
    }
  }
}

// From a serialized StreamImagesResponse: module id and source time (ns).
bool inspect(std::string_view response, std::uint32_t* module, std::int64_t* source_ns) {
  auto r = reader_of(response);
  std::uint32_t f, t;
  std::string_view image;
  std::uint64_t v;
  bool found = false;
  while (r.next(&f, &t, &image, &v))
    if (f == 4 && t == 2) {
      found = true;
      break;
    }
  if (!found) return false;
  auto p = reader_of(image);
  std::string_view sub;
  double tv_sec = -1, pkt_nsec = -1;
  *module = 0;
  while (p.next(&f, &t, &sub, &v)) {
    if (f == 2 && t == 2) walk_struct(sub, &tv_sec, &pkt_nsec, 0);
    if (f == 8 && t == 0) *module = static_cast<std::uint32_t>(v);
  }
  if (tv_sec < 0 || pkt_nsec < 0) return false;
  *source_ns =
      static_cast<std::int64_t>(tv_sec) * 1'000'000'000 + static_cast<std::int64_t>(pkt_nsec);
  return true;
}

// ------------------------------------------------------------ clients

struct Shared {
  std::atomic<bool> counting{false};
  bool latency = false;
  std::vector<std::uint32_t> modules;
};

class Stream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  Stream(grpc::GenericStub& stub, Shared& shared, const std::string& request) : shared_(shared) {
    grpc::Slice s(request);
    request_ = grpc::ByteBuffer(&s, 1);
    stub.PrepareBidiStreamingCall(&ctx_, "/daqdata.DaqData/StreamImages", grpc::StubOptions(),
                                  this);
    StartWriteLast(&request_, grpc::WriteOptions());
    StartRead(&in_);
    StartCall();
  }
  void OnWriteDone(bool) override {}
  void OnReadDone(bool ok) override {
    if (!ok) return;  // the call is over; OnDone follows
    if (shared_.counting.load(std::memory_order_relaxed)) {
      ++received;
      if (shared_.latency) {
        std::vector<grpc::Slice> slices;
        std::string_view view;
        grpc::Slice single;
        std::string copy;
        if (in_.TrySingleSlice(&single).ok()) {
          view = {reinterpret_cast<const char*>(single.begin()), single.size()};
        } else if (in_.Dump(&slices).ok()) {
          for (auto& s : slices) copy.append(reinterpret_cast<const char*>(s.begin()), s.size());
          view = copy;
        }
        std::uint32_t module = 0;
        std::int64_t source = 0;
        const auto now = wall_time_ns();
        if (inspect(view, &module, &source) &&
            std::find(shared_.modules.begin(), shared_.modules.end(), module) !=
                shared_.modules.end())
          latency_ms.push_back((now - source) / 1e6);
      }
    }
    in_.Clear();
    StartRead(&in_);
  }
  void OnDone(const grpc::Status& s) override {
    std::lock_guard lock(mutex_);
    status_ = s;
    done_ = true;
    cv_.notify_all();
  }
  void cancel() { ctx_.TryCancel(); }
  grpc::Status wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return done_; });
    return status_;
  }

  std::uint64_t received = 0;  // only touched by this stream's callbacks
  std::vector<double> latency_ms;

 private:
  Shared& shared_;
  grpc::ClientContext ctx_;
  grpc::ByteBuffer request_, in_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  grpc::Status status_;
};

// ------------------------------------------------------------ producer

int connect_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  int sndbuf = 1 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  return fd;
}

struct ProducerStats {
  std::atomic<std::uint64_t> written{0}, dropped{0};
};

void produce(const std::string& socket_template, const std::vector<pff::Product>& products,
             const std::vector<std::uint32_t>& modules, double rate, std::atomic<bool>& running,
             ProducerStats& stats) {
  struct Out {
    pff::Product product;
    int fd;
    std::string pending;  // a partly written record is finished before the next
  };
  std::vector<Out> outs;
  for (auto p : products) {
    std::string path = socket_template;
    const auto at = path.find("{dp_name}");
    if (at != std::string::npos) path.replace(at, 9, pff::info(p).name);
    int fd = -1;
    for (int i = 0; i < 100 && fd < 0 && running; ++i) {
      fd = connect_unix(path);
      if (fd < 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (fd < 0) {
      std::fprintf(stderr, "bench_daq_load: cannot connect to %s\n", path.c_str());
      std::exit(1);
    }
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    outs.push_back({p, fd, {}});
  }
  std::vector<std::string> pixels;
  for (auto p : products) {
    std::string px(pff::info(p).image_bytes(), '\0');
    for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<char>(i * 7);
    pixels.push_back(std::move(px));
  }
  const auto period = std::chrono::duration<double>(1.0 / rate);
  auto next = std::chrono::steady_clock::now();
  std::uint64_t k = 0;
  std::string record;
  while (running) {
    const std::size_t pi = k % outs.size();
    const auto module = modules[(k / outs.size()) % modules.size()];
    auto& out = outs[pi];
    if (!out.pending.empty()) {  // finish the previous record first
      ssize_t w = ::send(out.fd, out.pending.data(), out.pending.size(), MSG_NOSIGNAL);
      if (w > 0) out.pending.erase(0, static_cast<std::size_t>(w));
    }
    if (out.pending.empty()) {
      record.clear();
      record.push_back(static_cast<char>(module >> 8));
      record.push_back(static_cast<char>(module & 0xFF));
      record += pff::format_header(out.product,
                                   pff::stamp_for(wall_time_ns(), static_cast<std::uint32_t>(k)),
                                   static_cast<unsigned>(k % 4));
      record.push_back('*');
      record += pixels[pi];
      ssize_t w = ::send(out.fd, record.data(), record.size(), MSG_NOSIGNAL);
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        stats.dropped.fetch_add(1, std::memory_order_relaxed);
      } else if (w < 0) {
        std::fprintf(stderr, "bench_daq_load: data socket closed (%s)\n", std::strerror(errno));
        std::exit(1);
      } else {
        if (static_cast<std::size_t>(w) < record.size()) out.pending = record.substr(w);
        stats.written.fetch_add(1, std::memory_order_relaxed);
      }
    } else {
      stats.dropped.fetch_add(1, std::memory_order_relaxed);
    }
    ++k;
    next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(period);
    const auto now = std::chrono::steady_clock::now();
    if (next > now)
      std::this_thread::sleep_until(next);
    else if (now - next > std::chrono::milliseconds(100))
      next = now;  // do not burst after a stall
  }
  for (auto& o : outs) ::close(o.fd);
}

// The machine's own wake-up delay during a case: one thread writes the time
// to a socket pair every millisecond, another blocks reading it. Its p99 is
// the tail a single thread hop gets from the scheduler right then (every
// frame takes several such hops between the producer and a client).
class HopProbe {
 public:
  explicit HopProbe(std::atomic<bool>& counting) : counting_(counting) {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_) != 0) {
      std::perror("socketpair");
      std::exit(1);
    }
    reader_ = std::thread([this] {
      std::int64_t t = 0;
      while (::read(fds_[1], &t, sizeof t) == sizeof t && t >= 0)
        if (counting_.load(std::memory_order_relaxed)) ms_.push_back((wall_time_ns() - t) / 1e6);
    });
    writer_ = std::thread([this] {
      auto next = std::chrono::steady_clock::now();
      while (!stop_) {
        const std::int64_t t = wall_time_ns();
        if (::write(fds_[0], &t, sizeof t) != sizeof t) break;
        next += std::chrono::milliseconds(1);
        std::this_thread::sleep_until(next);
      }
      const std::int64_t end = -1;
      (void)!::write(fds_[0], &end, sizeof end);
    });
  }
  // Stops both threads; the sorted delays, ms.
  std::vector<double> finish() {
    stop_ = true;
    writer_.join();
    reader_.join();
    ::close(fds_[0]);
    ::close(fds_[1]);
    std::sort(ms_.begin(), ms_.end());
    return ms_;
  }

 private:
  std::atomic<bool>& counting_;
  std::atomic<bool> stop_{false};
  int fds_[2] = {-1, -1};
  std::vector<double> ms_;
  std::thread reader_, writer_;
};

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return -1;
  return sorted[std::min(sorted.size() - 1,
                         static_cast<std::size_t>(p * (sorted.size() - 1) + 0.5))];
}

template <class T>
std::vector<T> parse_list(const char* s, T (*conv)(const std::string&)) {
  std::vector<T> out;
  std::string all(s);
  std::size_t start = 0;
  while (start <= all.size()) {
    auto comma = all.find(',', start);
    if (comma == std::string::npos) comma = all.size();
    if (comma > start) out.push_back(conv(all.substr(start, comma - start)));
    start = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string target, socket_template;
  int streams = 1, channels = 4;
  double seconds = 3, warmup = 0.5, rate = 8000, interval = 0;
  bool latency = false;
  std::vector<pff::Product> products{pff::Product::img16, pff::Product::ph256};
  std::vector<std::uint32_t> modules{11, 12, 13, 14};
  for (int i = 1; i < argc; ++i) {
    auto arg = [&](const char* name) { return !std::strcmp(argv[i], name) && i + 1 < argc; };
    if (arg("--target"))
      target = argv[++i];
    else if (arg("--socket-template"))
      socket_template = argv[++i];
    else if (arg("--streams"))
      streams = std::atoi(argv[++i]);
    else if (arg("--channels"))
      channels = std::atoi(argv[++i]);
    else if (arg("--seconds"))
      seconds = std::atof(argv[++i]);
    else if (arg("--warmup"))
      warmup = std::atof(argv[++i]);
    else if (arg("--rate"))
      rate = std::atof(argv[++i]);
    else if (arg("--interval"))
      interval = std::atof(argv[++i]);
    else if (!std::strcmp(argv[i], "--latency"))
      latency = true;
    else if (arg("--products"))
      products = parse_list<pff::Product>(argv[++i], [](const std::string& s) {
        auto p = pff::product_from_name(s);
        if (!p) {
          std::fprintf(stderr, "unknown data product %s\n", s.c_str());
          std::exit(2);
        }
        return *p;
      });
    else if (arg("--modules"))
      modules = parse_list<std::uint32_t>(
          argv[++i], [](const std::string& s) { return std::uint32_t(std::stoul(s)); });
    else {
      std::fprintf(stderr,
                   "usage: bench_daq_load --target T --socket-template P [--streams N] "
                   "[--channels K] [--seconds S] [--warmup W] [--rate R] [--interval I] "
                   "[--latency] [--products a,b] [--modules 1,2]\n");
      return 2;
    }
  }
  if (target.empty() || socket_template.empty() || streams < 1 || channels < 1 || rate <= 0 ||
      modules.empty() || products.empty()) {
    std::fprintf(stderr, "bench_daq_load: --target and --socket-template are required\n");
    return 2;
  }
  channels = std::min(channels, streams);

  Shared shared;
  shared.latency = latency;
  shared.modules = modules;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  for (int c = 0; c < channels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("acheron.bench_channel", c);  // a connection of its own per channel
    args.SetMaxReceiveMessageSize(64 << 20);
    stubs.push_back(std::make_unique<grpc::GenericStub>(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args)));
  }
  daqdata::StreamImagesRequest req;
  req.set_stream_movie_data(true);
  req.set_stream_pulse_height_data(true);
  req.set_update_interval_seconds(interval);
  for (auto m : modules) req.add_module_ids(m);
  const auto request = req.SerializeAsString();

  std::atomic<bool> running{true};
  ProducerStats pstats;
  std::thread producer([&] { produce(socket_template, products, modules, rate, running, pstats); });

  std::vector<std::unique_ptr<Stream>> all;
  for (int s = 0; s < streams; ++s)
    all.push_back(std::make_unique<Stream>(*stubs[s % channels], shared, request));

  std::optional<HopProbe> probe;
  if (latency) probe.emplace(shared.counting);
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
  const auto written0 = pstats.written.load();
  const auto dropped0 = pstats.dropped.load();
  const double cpu0 = cpu_seconds();
  shared.counting = true;
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  shared.counting = false;
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  const auto written = pstats.written.load() - written0;
  const auto dropped = pstats.dropped.load() - dropped0;
  running = false;
  producer.join();
  const auto hops = probe ? probe->finish() : std::vector<double>{};
  int failed = 0;
  for (auto& s : all) s->cancel();
  for (auto& s : all) {
    auto st = s->wait();
    if (st.error_code() != grpc::StatusCode::CANCELLED && !st.ok()) {
      if (!failed)
        std::fprintf(stderr, "bench_daq_load: a stream ended with %d: %s\n", int(st.error_code()),
                     st.error_message().c_str());
      ++failed;
    }
  }
  std::uint64_t received = 0, min_stream = ~std::uint64_t{0};
  std::vector<double> lat;
  for (auto& s : all) {
    received += s->received;
    min_stream = std::min(min_stream, s->received);
    lat.insert(lat.end(), s->latency_ms.begin(), s->latency_ms.end());
  }
  std::sort(lat.begin(), lat.end());
  std::printf(
      "{\"streams\": %d, \"channels\": %d, \"seconds\": %.3f, \"received\": %llu, \"rate\": %.1f, "
      "\"min_stream_rate\": %.1f, \"written\": %llu, \"dropped\": %llu, \"failed_streams\": %d, "
      "\"client_cpu_s\": %.3f, \"latency_samples\": %zu, \"p50_ms\": %.3f, \"p90_ms\": %.3f, "
      "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"hop_p50_ms\": %.3f, \"hop_p99_ms\": %.3f}\n",
      streams, channels, dt, static_cast<unsigned long long>(received), received / dt,
      min_stream / dt, static_cast<unsigned long long>(written),
      static_cast<unsigned long long>(dropped), failed, cpu, lat.size(), percentile(lat, 0.5),
      percentile(lat, 0.9), percentile(lat, 0.99), lat.empty() ? -1.0 : lat.back(),
      percentile(hops, 0.5), percentile(hops, 0.99));
  return failed ? 1 : 0;
}
