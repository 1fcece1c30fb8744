// The router test fixture: a CharonRouter on a fake clock, with helpers for
// client and worker messages. Shared by the router tests and the broker
// monitor tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <memory>

#include "RouterTestUtil.hh"
#include "acheron/charon/CharonRouter.hh"

namespace acheron::charon::testutil {
using namespace std::chrono_literals;

constexpr std::string_view kPeer = "10.0.0.7";

class RouterTest : public ::testing::Test {
 protected:
  // An arbitrary origin well away from the clock's epoch.
  TimePoint now = TimePoint{} + 1000h;
  RouterOptions opts;
  std::unique_ptr<CharonRouter> router;
  Outbox last;  // everything produced by the most recent call

  CharonRouter& r() {
    if (!router) router = std::make_unique<CharonRouter>(opts, now);
    return *router;
  }

  // A REQ client's message: [client, "", body...].
  const Outbox& client(std::string_view id, std::vector<Buffer> body,
                       std::string_view peer = kPeer) {
    std::vector<Buffer> frames = {text(id), Buffer{}};
    frames.insert(frames.end(), body.begin(), body.end());
    last = r().on_frontend_message(std::move(frames), peer, now);
    return last;
  }
  const Outbox& backend(std::vector<Buffer> frames) {
    last = r().on_backend_message(std::move(frames), now);
    return last;
  }
  const Outbox& control(std::string_view worker, std::uint8_t byte) {
    return backend({text(worker), Buffer::copy_of(&byte, 1)});
  }
  const Outbox& ready(std::string_view worker) { return control(worker, wire::charon::kReady); }
  const Outbox& heartbeat(std::string_view worker) {
    return control(worker, wire::charon::kHeartbeat);
  }
  const Outbox& tick() {
    last = r().on_tick(now);
    return last;
  }
  // Advances the clock in steps of at most 0.5 s, heartbeating from `alive`
  // workers every second and ticking, as a live broker would.
  void run_for(Duration d, std::initializer_list<std::string_view> alive = {}) {
    const TimePoint end = now + d;
    TimePoint next_beat = now + 1s;
    while (now < end) {
      now = std::min(end, now + 500ms);
      if (now >= next_beat) {
        for (auto w : alive) heartbeat(w);
        next_beat += 1s;
      }
      tick();
    }
  }

  // A worker's reply: [worker, slot, "", reply...].
  const Outbox& worker_reply(std::string_view worker, const Buffer& slot,
                             std::vector<Buffer> reply) {
    std::vector<Buffer> frames = {text(worker), slot, Buffer{}};
    frames.insert(frames.end(), reply.begin(), reply.end());
    return backend(std::move(frames));
  }

  // Messages in `out` for one socket and identity.
  static std::vector<Outgoing> to(const Outbox& out, Socket s, std::string_view id) {
    std::vector<Outgoing> v;
    for (const auto& o : out) {
      if (o.socket == s && !o.frames.empty() && str(o.frames[0]) == id) v.push_back(o);
    }
    return v;
  }
  static std::vector<Outgoing> probes(const Outbox& out) {
    std::vector<Outgoing> v;
    for (const auto& o : out) {
      if (o.socket == Socket::backend && o.frames.size() == 4 &&
          str(o.frames[3]) == wire::charon::kDetectorInfo) {
        v.push_back(o);
      }
    }
    return v;
  }
  static std::uint32_t event_of(const Outgoing& job) { return u32(job.frames[4]); }

  // READY, then the answer to the router's DETECTOR_INFO probe.
  void add_worker(std::string_view id, const wire::charon::DetectorInfo& det = detector()) {
    ready(id);
    auto p = probes(last);
    ASSERT_EQ(p.size(), 1u) << "READY must trigger one probe";
    EXPECT_TRUE(p[0].frames[2].empty()) << "probe envelope is [worker, slot, \"\", ...]";
    worker_reply(id, p[0].frames[1], wire::charon::encode_detector_info(det));
  }

  // The reply a worker sends for a dispatched job.
  const Outbox& complete(const Outgoing& job) {
    const std::span<const Buffer> body(job.frames.data() + 3, job.frames.size() - 3);
    return worker_reply(str(job.frames[0]), job.frames[1], sim_complete_for(body));
  }

  // Exactly one frontend reply, to `client`, with this header.
  static void expect_reply(const Outbox& out, std::string_view client, std::string_view header) {
    auto f = frontend_out(out);
    ASSERT_EQ(f.size(), 1u) << "expected one reply " << header;
    ASSERT_GE(f[0].frames.size(), 3u);
    EXPECT_EQ(str(f[0].frames[0]), client);
    EXPECT_TRUE(f[0].frames[1].empty());
    EXPECT_EQ(str(f[0].frames[2]), header);
  }
};

}  // namespace acheron::charon::testutil
