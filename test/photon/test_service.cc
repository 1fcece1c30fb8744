// PhotonService's random streams: a fresh seed per service unless one is
// given, and streams keyed by the event's content, so that two jobs that both
// number their events from 0 do not draw the same numbers, while a resent
// event gets the same hits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "acheron/optics/Sources.hh"
#include "acheron/photon/Client.hh"
#include "acheron/photon/Service.hh"
#include "acheron/wire/Charon.hh"

namespace acheron::photon {
namespace {
namespace charon = wire::charon;

std::shared_ptr<const optics::Detector> shared_detector() {
  static auto d = std::make_shared<const optics::Detector>(optics::Detector::default_detector());
  return d;
}

// `n` photons of an isotropic source at the detector's centre; `shift` moves
// every photon by that many mm along x (a different job's photons).
charon::PhotonData event(std::uint32_t event_id, std::uint32_t n, std::uint64_t source_seed,
                         float shift = 0) {
  optics::PhotonBatch batch;
  optics::append_photons(batch, optics::IsotropicSource{.wavelength_min = 400, .wavelength_max = 400},
                         n, event_id, source_seed);
  for (auto& x : batch.x) x += shift;
  const auto e = EventPhotons::from_batch(batch, event_id, event_id);
  const auto frames = charon::encode_photon_data(e.event_id, e.f32, &e.flags);
  auto request = charon::decode_request(frames);
  return std::get<charon::Request>(request).photons;
}

// Per photon: detected or not.
std::vector<bool> detected(PhotonService& service, const charon::PhotonData& in) {
  std::vector<bool> out(in.num_photons, false);
  for (const auto& h : service.simulate_records(in)) out.at(h.photon) = true;
  return out;
}

TEST(PhotonServiceSeed, AFreshSeedForEachServiceUnlessGiven) {
  PhotonService a(shared_detector(), {.threads = 1});
  PhotonService b(shared_detector(), {.threads = 1});
  EXPECT_NE(a.seed(), b.seed());  // 2^-64 chance of a false failure
  PhotonService c(shared_detector(), {.threads = 1, .seed = 42});
  EXPECT_EQ(c.seed(), 42u);
}

TEST(PhotonServiceSeed, TheSameSeedAndEventGiveTheSameHits) {
  PhotonService a(shared_detector(), {.threads = 2, .seed = 5});
  PhotonService b(shared_detector(), {.threads = 1, .seed = 5});
  const auto in = event(3, 20000, 1);
  const auto ha = a.simulate_records(in);
  const auto hb = b.simulate_records(in);
  ASSERT_EQ(ha.size(), hb.size());
  ASSERT_GT(ha.size(), 500u);
  EXPECT_EQ(std::memcmp(ha.data(), hb.data(), ha.size() * sizeof ha[0]), 0);
  for (const auto& h : ha) EXPECT_EQ(h.event, 3u);  // the client's id, not the stream key
}

// Two jobs that both start at event 0 send photons that differ by 1 um. A
// photon's chance p of detection is the same in both (same direction and
// wavelength); with shared streams (the old keying by event id alone) it
// meets the same fate in both, so a photon detected in one job is detected in
// the other; with independent streams that happens with probability
// E[p^2]/E[p] <= max p, about QE x transmission (~0.25 here, 0.5 at most).
TEST(PhotonServiceSeed, TwoJobsWithTheSameEventIdsDrawIndependentNumbers) {
  PhotonService service(shared_detector(), {.threads = 2, .seed = 5});
  const std::uint32_t n = 40000;
  const auto job_a = detected(service, event(0, n, 1));
  const auto again = detected(service, event(0, n, 1));
  const auto job_b = detected(service, event(0, n, 1, 1e-3f));
  std::size_t hits_a = 0, both = 0, same = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    hits_a += job_a[i];
    both += job_a[i] && job_b[i];
    same += job_a[i] && again[i];
  }
  ASSERT_GT(hits_a, 1000u);
  EXPECT_EQ(same, hits_a);  // a resent event: the same streams
  EXPECT_LT(double(both) / hits_a, 0.5) << both << " of " << hits_a << " detected in both";
}

// The same content under another event id is another stream too.
TEST(PhotonServiceSeed, StreamKeysDependOnSeedEventAndPhotons) {
  optics::PhotonBatch batch;
  optics::append_photons(batch, optics::IsotropicSource{}, 100, 0, 1);
  const auto k = stream_key(1, 0, batch, 0, batch.size());
  EXPECT_EQ(k, stream_key(1, 0, batch, 0, batch.size()));
  EXPECT_NE(k, stream_key(2, 0, batch, 0, batch.size()));
  EXPECT_NE(k, stream_key(1, 1, batch, 0, batch.size()));
  EXPECT_NE(k, stream_key(1, 0, batch, 0, 99));
  batch.wavelength[50] += 1;
  EXPECT_NE(k, stream_key(1, 0, batch, 0, batch.size()));
}

// Batched events (a worker's engine batch) keep the hits they get alone.
TEST(PhotonServiceSeed, BatchedEventsGetTheHitsTheyGetAlone) {
  PhotonService service(shared_detector(), {.threads = 2, .seed = 9});
  const auto e1 = event(1, 5000, 1), e2 = event(2, 5000, 2);
  const auto batched = service.simulate_batch({&e1, &e2});
  ASSERT_EQ(batched.size(), 2u);
  const auto alone = service.simulate(e2);
  EXPECT_EQ(charon::encode_sim_complete(batched[1], e2.version).size(), alone.size());
  const auto again = charon::encode_sim_complete(batched[1], e2.version);
  for (std::size_t i = 0; i < alone.size(); ++i) {
    ASSERT_EQ(again[i].size(), alone[i].size());
    EXPECT_EQ(std::memcmp(again[i].data(), alone[i].data(), alone[i].size()), 0) << "frame " << i;
  }
}

}  // namespace
}  // namespace acheron::photon
