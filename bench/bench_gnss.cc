// UBX codec and capture costs, side by side in one run:
//   parse    StreamParser over a receiver stream (TIM-TP + NAV-TIMEUTC per
//            second, NMEA in between), fed in 64-byte reads, vs memcpy of
//            the same bytes;
//   fields   pyubx2-named dictionaries (parsed_fields) per frame;
//   response one CaptureUbloxResponse built and serialised per client per
//            message (dictionary -> Struct, frame, timestamp).
// Prints a table with ratios. Usage: bench_gnss [--seconds-per-case S]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "acheron/gnss/Convert.hh"
#include "acheron/ublox_control.pb.h"
#include "acheron/wire/Ubx.hh"

namespace {
namespace ubx = acheron::wire::ubx;
using Clock = std::chrono::steady_clock;

ubx::Bytes make_stream(std::size_t seconds, std::size_t* frames) {
  ubx::Bytes s;
  const std::string nmea = "$GNZDA,035402.00,13,08,2025,00,00*7E\r\n";
  for (std::size_t i = 0; i < seconds; ++i) {
    ubx::TimTp tp{static_cast<std::uint32_t>(273244000 + 1000 * i),
                  0,
                  static_cast<std::int32_t>(i % 8000) - 4000,
                  2379,
                  0x0B,
                  0x3F};
    ubx::NavTimeUtc nav{static_cast<std::uint32_t>(273260000 + 1000 * i),
                        62,
                        370655,
                        2025,
                        8,
                        13,
                        3,
                        54,
                        static_cast<std::uint8_t>(i % 60),
                        0x37};
    for (const auto& f : {ubx::encode_tim_tp(tp), ubx::encode_nav_timeutc(nav)})
      s.insert(s.end(), f.begin(), f.end());
    s.insert(s.end(), nmea.begin(), nmea.end());
  }
  *frames = 2 * seconds;
  return s;
}

// Best of three runs of `reps` calls; seconds per call.
double best_of_three(const std::function<void()>& f, std::size_t reps) {
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < reps; ++i) f();
    best = std::min(
        best, std::chrono::duration<double>(Clock::now() - t0).count() / static_cast<double>(reps));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  double budget = 0.3;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--seconds-per-case") budget = std::stod(argv[i + 1]);
  }
  std::size_t nframes = 0;
  const ubx::Bytes stream = make_stream(4096, &nframes);
  ubx::Bytes sink(stream.size());
  volatile std::size_t keep = 0;

  auto calibrate = [&](const std::function<void()>& f) {
    const auto t0 = Clock::now();
    std::size_t n = 0;
    while (std::chrono::duration<double>(Clock::now() - t0).count() < budget / 4) {
      f();
      ++n;
    }
    return std::max<std::size_t>(1, n);
  };

  auto memcpy_run = [&] {
    std::memcpy(sink.data(), stream.data(), stream.size());
    keep = keep + sink[sink.size() / 2];
  };
  auto parse_run = [&] {
    ubx::StreamParser p;
    std::size_t n = 0;
    for (std::size_t off = 0; off < stream.size(); off += 64) {
      p.feed(ubx::ByteSpan(stream).subspan(off, std::min<std::size_t>(64, stream.size() - off)));
      while (auto f = p.next()) n += f->size();
    }
    keep = keep + n;
  };
  const double t_memcpy = best_of_three(memcpy_run, calibrate(memcpy_run));
  const double t_parse = best_of_three(parse_run, calibrate(parse_run));

  // Per frame: dictionary, and the response a capture client receives.
  std::vector<ubx::Frame> frames;
  {
    ubx::StreamParser p;
    p.feed(stream);
    while (auto f = p.next()) frames.push_back(std::move(*f));
  }
  std::size_t i = 0;
  auto fields_run = [&] { keep = keep + ubx::parsed_fields(frames[i++ % frames.size()]).size(); };
  const auto parsed = ubx::parsed_fields(frames[0]);
  std::string wire;
  auto response_run = [&] {
    ubloxcontrol::CaptureUbloxResponse r;
    r.set_type(ubloxcontrol::CaptureUbloxResponse::DATA);
    r.set_name("TIM-TP");
    acheron::gnss::json_to_struct(parsed, r.mutable_parsed_data());
    r.set_payload(reinterpret_cast<const char*>(frames[0].bytes().data()), frames[0].size());
    r.mutable_pkt_unix_timestamp()->set_seconds(1755057242);
    r.SerializeToString(&wire);
    keep = keep + wire.size();
  };
  const double t_fields = best_of_three(fields_run, calibrate(fields_run));
  const double t_response = best_of_three(response_run, calibrate(response_run));

  const double mb = static_cast<double>(stream.size()) / 1e6;
  std::printf("UBX stream: %zu frames, %zu bytes (TIM-TP + NAV-TIMEUTC + NMEA per second)\n",
              nframes, stream.size());
  std::printf("%-34s %14s %14s %10s\n", "case", "per item", "throughput", "ratio");
  std::printf("%-34s %11.3f us %10.0f MB/s %10s\n", "memcpy of the stream", t_memcpy * 1e6,
              mb / t_memcpy, "1.00");
  std::printf("%-34s %11.3f us %10.0f MB/s %9.1fx\n", "StreamParser (64-byte reads)", t_parse * 1e6,
              mb / t_parse, t_parse / t_memcpy);
  std::printf("%-34s %11.3f us %10.2f M/s\n", "  per frame",
              t_parse / static_cast<double>(nframes) * 1e6,
              static_cast<double>(nframes) / t_parse / 1e6);
  std::printf("%-34s %11.3f us %10.2f M/s %9.1fx\n", "parsed_fields per frame", t_fields * 1e6,
              1e-6 / t_fields, t_fields / (t_parse / static_cast<double>(nframes)));
  std::printf("%-34s %11.3f us %10.2f M/s %9.1fx\n", "CaptureUbloxResponse per client",
              t_response * 1e6, 1e-6 / t_response,
              t_response / (t_parse / static_cast<double>(nframes)));
  std::printf("(ratios: parser vs memcpy; per-frame costs vs parsing one frame)\n");
  std::printf("keep %zu\n", static_cast<std::size_t>(keep) % 10);
  return 0;
}
