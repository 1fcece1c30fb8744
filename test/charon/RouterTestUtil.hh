// Helpers shared by the broker tests: ChAR0N messages, a fixed detector and
// readable frame comparisons.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "TestBytes.hh"
#include "acheron/charon/CharonRouter.hh"
#include "acheron/core/Payload.hh"
#include "acheron/wire/Charon.hh"

namespace acheron::charon::testutil {

using test_support::str;
using test_support::text;

inline std::uint32_t u32(const Buffer& b) {
  std::uint32_t v = 0;
  if (b.size() >= 4) std::memcpy(&v, b.data(), 4);
  return v;
}

// A current (14-frame) PHOTONDATA request with n photons whose values depend
// on `salt`, so different salts give different payload digests.
inline std::vector<Buffer> photon_request(std::uint32_t event_id, std::uint32_t n = 4,
                                          float salt = 0) {
  std::array<std::vector<float>, wire::charon::kComponents> f32;
  for (int c = 0; c < wire::charon::kComponents; ++c) {
    for (std::uint32_t i = 0; i < n; ++i) f32[c].push_back(salt + static_cast<float>(c + i));
  }
  std::vector<std::uint32_t> flags(n, wire::charon::kCherenkov);
  return wire::charon::encode_photon_data(event_id, f32, &flags);
}

// The detector the fake workers serve: `channels` channels on the x axis.
inline wire::charon::DetectorInfo detector(std::size_t channels = 3, float offset = 0) {
  wire::charon::DetectorInfo d;
  for (std::size_t i = 0; i < channels; ++i) {
    d.x.push_back(offset + 100.0f * static_cast<float>(i));
    d.y.push_back(0);
    d.z.push_back(0);
    d.type.push_back(static_cast<std::int32_t>(i));
  }
  return d;
}

// A worker's answer to PHOTONDATA: a 12-frame SIM_COMPLETE whose hits encode
// the request (one hit per photon, channel = event_id + i), so a client can
// tell its reply from anyone else's.
inline std::vector<Buffer> sim_complete_for(std::span<const Buffer> request) {
  auto decoded = wire::charon::decode_request(request);
  wire::charon::Hits h;
  if (auto* r = std::get_if<wire::charon::Request>(&decoded)) {
    h.event_id = r->photons.event_id;
    for (std::uint32_t i = 0; i < r->photons.num_photons; ++i) {
      h.channel.push_back(h.event_id + i);
      for (auto* v : {&h.dir_x, &h.dir_y, &h.dir_z, &h.pol_x, &h.pol_y, &h.pol_z}) {
        v->push_back(0);
      }
      h.wavelength.push_back(r->photons.value(wire::charon::wavelength, i));
      h.time.push_back(r->photons.value(wire::charon::time, i));
      h.flags.push_back(wire::charon::kCherenkov | 4u);
    }
  }
  return wire::charon::encode_sim_complete(std::move(h), wire::charon::Version::current);
}

// What a router call sent to clients.
inline std::vector<Outgoing> frontend_out(const Outbox& out) {
  std::vector<Outgoing> v;
  for (const auto& o : out) {
    if (o.socket == Socket::frontend) v.push_back(o);
  }
  return v;
}

// Jobs (not heartbeats or probes) a router call sent to workers.
inline std::vector<Outgoing> jobs(const Outbox& out) {
  std::vector<Outgoing> v;
  for (const auto& o : out) {
    if (o.socket == Socket::backend && o.frames.size() > 4 &&
        str(o.frames[3]) == wire::charon::kPhotonData) {
      v.push_back(o);
    }
  }
  return v;
}

// A CharonRouter driven by hand, without sockets: client and worker messages
// go in, and the outbox of the last call is kept in `last`. Set `opts`
// before the first call (the router is made on first use).
struct RouterDriver {
  TimePoint now = TimePoint{} + std::chrono::hours(1000);
  RouterOptions opts;
  std::unique_ptr<CharonRouter> router;
  Outbox last;

  CharonRouter& r() {
    if (!router) router = std::make_unique<CharonRouter>(opts, now);
    return *router;
  }
  const Outbox& client(std::string_view id, std::string_view peer, std::vector<Buffer> body) {
    std::vector<Buffer> frames = {text(id), Buffer{}};
    frames.insert(frames.end(), body.begin(), body.end());
    last = r().on_frontend_message(std::move(frames), peer, now);
    return last;
  }
  const Outbox& worker_reply(std::string_view worker, const Buffer& slot,
                             std::vector<Buffer> reply) {
    std::vector<Buffer> frames = {text(worker), slot, Buffer{}};
    frames.insert(frames.end(), reply.begin(), reply.end());
    last = r().on_backend_message(std::move(frames), now);
    return last;
  }
  // READY, then the answer to the router's DETECTOR_INFO probe.
  void add_worker(std::string_view id) {
    const std::uint8_t ready = wire::charon::kReady;
    last = r().on_backend_message({text(id), Buffer::copy_of(&ready, 1)}, now);
    for (const auto& o : last) {
      if (o.socket == Socket::backend && o.frames.size() == 4 &&
          str(o.frames[3]) == wire::charon::kDetectorInfo) {
        worker_reply(id, o.frames[1], wire::charon::encode_detector_info(detector()));
        return;
      }
    }
    FAIL() << "READY must trigger a probe";
  }
};

}  // namespace acheron::charon::testutil
