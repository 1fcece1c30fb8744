// Fuzz target: the broker's routing policy (CharonRouter) must survive any
// sequence of frontend messages, backend messages, worker losses and timer
// ticks, and every message it emits must be routable.
//
// Input: frames (FuzzFrames.hh). Each step starts with a control frame
// [op, count, dt]: the clock advances dt × 50 ms, the next `count` frames are
// the step's message, and (op & 7) % 5 picks what happens:
//   0 frontend message, from peer number op >> 3
//   1 backend message
//   2 timer tick
//   3 a worker answers the job or probe it was sent op >> 3 messages before the
//     latest: an empty message means a well-formed answer (the detector for a
//     probe, SIM_COMPLETE for a job), anything else is the reply body
//   4 the worker named by message[0] is unreachable
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <string>

#include "FuzzFrames.hh"
#include "TestBytes.hh"
#include "acheron/charon/CharonRouter.hh"
#include "acheron/wire/Charon.hh"

namespace {
using namespace acheron;
using namespace std::chrono_literals;

using test_support::str;

void check(const acheron::charon::Outbox& out, std::deque<acheron::charon::Outgoing>& sent) {
  for (const auto& o : out) {
    // Every message names its destination; every reply has a header.
    if (o.frames.size() < 2 || o.frames[0].empty()) std::abort();
    if (o.socket == acheron::charon::Socket::frontend) {
      const auto routed = wire::charon::split_envelope(o.frames);
      if (routed.envelope_frames == 0 || routed.body.empty() || routed.body[0].empty()) {
        std::abort();
      }
    } else if (o.frames.size() >= 4) {
      sent.push_back(o);  // a job or a probe: [worker, slot, "", request...]
      if (sent.size() > 16) sent.pop_front();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto frames = acheron::fuzz::split_frames(data, size);
  acheron::charon::RouterOptions o;
  o.max_queue_jobs = 8;
  o.max_queue_jobs_per_host = 4;  // below the whole queue's bound, so both refuse
  o.worker_prefetch = 2;
  o.max_job_retries = 1;
  o.limits.max_photons = 1 << 16;
  TimePoint now{};
  acheron::charon::CharonRouter router(o, now);
  std::deque<acheron::charon::Outgoing> sent;
  static const char* const kPeers[] = {"", "10.0.0.1", "10.0.0.2", "::1"};

  std::size_t i = 0;
  while (i < frames.size()) {
    const Buffer& ctl = frames[i++];
    const auto byte = [&](std::size_t k) {
      return k < ctl.size() ? static_cast<std::uint8_t>(ctl.data()[k]) : std::uint8_t{0};
    };
    const std::uint8_t op = byte(0);
    const std::size_t count = std::min<std::size_t>(byte(1) % 32, frames.size() - i);
    now += byte(2) * 50ms;
    std::vector<Buffer> msg(frames.begin() + static_cast<std::ptrdiff_t>(i),
                            frames.begin() + static_cast<std::ptrdiff_t>(i + count));
    i += count;
    acheron::charon::Outbox out;
    switch ((op & 7) % 5) {
      case 0:
        out = router.on_frontend_message(std::move(msg), kPeers[(op >> 3) % 4], now);
        break;
      case 1:
        out = router.on_backend_message(std::move(msg), now);
        break;
      case 2:
        out = router.on_tick(now);
        break;
      case 3: {
        if (sent.empty()) break;
        const auto& to = sent[sent.size() - 1 - (op >> 3) % sent.size()];
        std::vector<Buffer> reply = {to.frames[0], to.frames[1], Buffer{}};
        if (msg.empty()) {
          const std::span<const Buffer> request(to.frames.data() + 3, to.frames.size() - 3);
          if (str(request[0]) == wire::charon::kDetectorInfo) {
            wire::charon::DetectorInfo d{{0, 1}, {0, 0}, {0, 0}, {0, 1}};
            msg = wire::charon::encode_detector_info(d);
          } else {
            auto decoded = wire::charon::decode_request(request);
            wire::charon::Hits h;
            if (auto* r = std::get_if<wire::charon::Request>(&decoded))
              h.event_id = r->photons.event_id;
            msg = wire::charon::encode_sim_complete(std::move(h), wire::charon::Version::current);
          }
        }
        reply.insert(reply.end(), msg.begin(), msg.end());
        out = router.on_backend_message(std::move(reply), now);
        break;
      }
      default:
        out = router.on_worker_unreachable(msg.empty() ? std::string() : str(msg[0]), now);
        break;
    }
    check(out, sent);
  }
  // Invariants that hold whatever happened.
  const auto s = router.stats();
  if (s.in_flight > s.workers * o.worker_prefetch) std::abort();
  if (s.workers != s.workers_idle + s.workers_busy + s.workers_probing + s.workers_rejected) {
    std::abort();
  }
  if (s.queue_depth == 0 && s.queue_bytes != 0) std::abort();
  // Fair turns: hosts and sockets waiting are never more than requests.
  if (s.queue_hosts > s.queue_connections || s.queue_connections > s.queue_depth) std::abort();
  if (s.host_limited > s.no_workers) std::abort();
  (void)router.stats_json(now).dump();
  return 0;
}
