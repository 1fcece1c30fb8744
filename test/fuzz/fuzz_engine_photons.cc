// Fuzz target: photons as a client sends them (any float bits: NaN, infinities,
// 2e18 mm, denormals, zero or parallel vectors, out-of-range wavelengths, any
// creator flags) run through the photon engine on a small detector with
// bulk absorption, scattering, reemission, reflecting walls and eight PMTs,
// twice: as given straight to Engine::simulate, and through the ChAR0N
// front's input validation (append_event) as `photon serve` does.
//
// Invariants: nothing crashes; every photon ends in exactly one outcome (the
// diagnostics counters sum to the photon count); hits are on channels that
// exist, in input order, at finite positions, with finite directions and a
// time that never runs backwards (and is finite when the input time is,
// short of float's limit); after the front's validation every hit time is
// finite.
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "FuzzInput.hh"
#include "acheron/optics/Detector.hh"
#include "acheron/optics/Engine.hh"
#include "acheron/photon/Convert.hh"

namespace {

using namespace acheron;
using optics::HitRecord;
using optics::Photon;

// A closed tank (reflecting, absorbing wall; water that absorbs, scatters
// and reemits) with eight PMTs, small enough to build in well under a second.
constexpr const char* kDetector = R"(
name = "fuzz tank"
[settings]
max_steps = 200
[[material]]
name = "water"
refractive_index = [[300, 1.35], [600, 1.33]]
absorption_length = 4000
scattering_length = 3000
  [[material.component]]
  absorption_length = 20000
  reemission_prob = 0.5
  spectrum = [[400, 0.0], [430, 1.0], [500, 0.0]]
  time_constant = 3.5
[[material]]
name = "glass"
refractive_index = 1.5
absorption_length = 1e5
scattering_length = 1e6
[[material]]
name = "rock"
refractive_index = 1.0
absorption_length = 1e3
scattering_length = 1e6
[[surface]]
name = "cathode"
detect = 0.5
absorb = 0.3
[[surface]]
name = "black"
absorb = 1.0
[[surface]]
name = "wall"
absorb = 0.4
reflect_diffuse = 0.3
reflect_specular = 0.3
[[solid]]
name = "tank"
shape = "sphere"
radius = 1000
segments = 32
inner = "water"
outer = "rock"
surface = "wall"
[[pmt_array]]
shape = "pmt"
aperture_radius = 100
sphere_radius = 130
segments = 12
inner = "glass"
outer = "water"
surfaces = ["cathode", "black"]
layout = "sphere"
count = 8
radius_of_array = 850
)";

const optics::Engine& engine() {
  static const optics::Engine e(
      std::make_shared<const optics::Detector>(optics::Detector::parse(kDetector, "fuzz.toml")),
      // Small chunks: one batch spans several chunks, whose hits are joined.
      {.threads = 2, .chunk = 7, .keep_final_states = true});
  return e;
}

// One float of a photon: raw bits, a value inside the detector, a
// unit-vector-sized value, or one of the values that break arithmetic.
float component(fuzz::Input& in) {
  static constexpr float kSpecial[] = {
      std::numeric_limits<float>::quiet_NaN(),
      -std::numeric_limits<float>::quiet_NaN(),
      std::numeric_limits<float>::infinity(),
      -std::numeric_limits<float>::infinity(),
      0.0f,
      -0.0f,
      std::numeric_limits<float>::max(),
      -std::numeric_limits<float>::max(),
      std::numeric_limits<float>::min(),
      std::numeric_limits<float>::denorm_min(),
      2e18f,
      -2e18f,
      1e30f,
      3000.0f,  // the world's edge
      999.99f,  // just inside the tank wall
      1.0f,
  };
  const std::uint8_t tag = in.u8();
  switch (tag % 6) {
    case 0:
    case 1:
      return in.f32();
    case 2:
      return static_cast<float>(static_cast<std::int16_t>(in.u16())) / 32.0f;  // +-1024 mm
    case 3:
      return static_cast<float>(static_cast<std::int8_t>(in.u8())) / 64.0f;  // +-2
    case 4:
      return 50.0f + static_cast<float>(in.u16() % 1000);  // wavelength-like (nm)
    default:
      return kSpecial[(tag / 6) % std::size(kSpecial)];
  }
}

struct Input {
  std::vector<Photon> photons;
  std::vector<std::uint32_t> raw_flags;
};

void check_hits(const std::vector<HitRecord>& hits, const std::vector<Photon>& photons,
                std::size_t channels, bool validated) {
  std::uint64_t previous = 0;
  bool first = true;
  for (const auto& h : hits) {
    FUZZ_CHECK(h.channel < channels);
    // Input order: (event, photon) strictly increasing.
    const std::uint64_t key = (std::uint64_t{h.event} << 32) | h.photon;
    FUZZ_CHECK(first || key > previous);
    previous = key;
    first = false;
    FUZZ_CHECK(h.flags & optics::history::surface_detect);
    for (float v : h.position) FUZZ_CHECK(std::isfinite(v));
    for (float v : h.direction) FUZZ_CHECK(std::isfinite(v));
    const std::size_t i = std::size_t{h.event} * 64 + h.photon;
    FUZZ_CHECK(i < photons.size());
    // The engine carries the time along (only the front validates it): a NaN
    // start stays NaN, anything else never becomes NaN.
    const float t0 = photons[i].time;
    FUZZ_CHECK(std::isnan(t0) || !std::isnan(h.time));
    if (std::isfinite(t0)) {
      FUZZ_CHECK(h.time >= t0);
      // Times only grow by flight and reemission delays (nanoseconds); a
      // finite start far from float's limit stays finite.
      if (std::fabs(t0) < 1e30f) FUZZ_CHECK(std::isfinite(h.time));
    }
    if (validated) FUZZ_CHECK(std::isfinite(h.time));
  }
}

void check_diagnostics(const optics::Diagnostics& d, std::size_t n, std::size_t hits) {
  FUZZ_CHECK(d.photons == n);
  FUZZ_CHECK(d.already_terminal + d.no_hit + d.bulk_absorb + d.surface_detect + d.surface_absorb +
                 d.nan_abort + d.max_steps ==
             n);
  // Every detecting surface of this detector is a PMT window, and a photon
  // that arrives stopped is never a hit (it carries no triangle).
  FUZZ_CHECK(hits == d.surface_detect);
  FUZZ_CHECK(d.wavelength_clamped <= n);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  const std::uint64_t seed = in.u8();
  static constexpr std::uint32_t kHistories[] = {
      0,
      optics::history::cherenkov,
      optics::history::scintillation,
      optics::history::cherenkov | optics::history::scintillation,
      optics::history::no_hit,
      optics::history::surface_detect,
      optics::history::nan_abort,
      0xFFFFFFFFu,
  };
  Input input;
  // 64 photons per event, so hits carry several event indices.
  while (!in.empty() && input.photons.size() < 256) {
    Photon p;
    p.position = {component(in), component(in), component(in)};
    p.direction = {component(in), component(in), component(in)};
    p.polarization = {component(in), component(in), component(in)};
    p.wavelength = component(in);
    p.time = component(in);
    const std::uint8_t h = in.u8();
    input.raw_flags.push_back(kHistories[h % 8] | (h & 0x80 ? 0x1000u : 0u));
    p.history = input.raw_flags.back();
    p.event = static_cast<std::uint32_t>(input.photons.size() / 64);
    p.index = static_cast<std::uint32_t>(input.photons.size() % 64);
    input.photons.push_back(p);
  }
  const auto& eng = engine();
  const std::size_t channels = eng.detector().geometry().channels().size();
  const std::size_t n = input.photons.size();

  // 1. Straight into the engine (the library API; Python and in-process callers).
  optics::PhotonBatch batch;
  for (const auto& p : input.photons) batch.push_back(p);
  const auto raw = eng.simulate(batch, seed);
  check_diagnostics(raw.diagnostics, n, raw.hits.size());
  check_hits(raw.hits, input.photons, channels, false);
  FUZZ_CHECK(raw.final_states.size() == n);
  for (std::size_t i = 0; i < n; ++i) {
    // A photon that was not already stopped ends with at most one terminal bit.
    if (input.photons[i].history & optics::history::terminal) continue;
    const std::uint32_t t =
        raw.final_states.history[i] & optics::history::terminal & ~optics::history::nan_abort;
    FUZZ_CHECK((t & (t - 1)) == 0);
  }

  // 2. Through the ChAR0N front's validation, one event per 64 photons.
  optics::PhotonBatch validated;
  std::uint32_t invalid = 0;
  for (std::size_t first = 0; first < n; first += 64) {
    const std::size_t count = std::min<std::size_t>(64, n - first);
    wire::charon::PhotonData event;
    event.event_id = static_cast<std::uint32_t>(first / 64);
    event.num_photons = static_cast<std::uint32_t>(count);
    std::vector<float> values(count);
    for (int c = 0; c < wire::charon::kComponents; ++c) {
      for (std::size_t i = 0; i < count; ++i) {
        const Photon& p = input.photons[first + i];
        const float v[] = {
            p.position.x,  p.position.y,     p.position.z,     p.direction.x,    p.direction.y,
            p.direction.z, p.polarization.x, p.polarization.y, p.polarization.z, p.wavelength,
            p.time};
        values[i] = v[c];
      }
      event.f32[static_cast<std::size_t>(c)] = Buffer::copy_of(values.data(), count * 4);
    }
    event.flags = Buffer::copy_of(input.raw_flags.data() + first, count * 4);
    const auto report = photon::append_event(validated, event, event.event_id);
    FUZZ_CHECK(report.invalid <= count);
    invalid += report.invalid;
  }
  FUZZ_CHECK(validated.size() == n);
  const auto checked = eng.simulate(validated, seed);
  check_diagnostics(checked.diagnostics, n, checked.hits.size());
  // The front marks invalid photons terminal; the engine leaves them alone.
  FUZZ_CHECK(checked.diagnostics.already_terminal == invalid);
  check_hits(checked.hits, input.photons, channels, true);
  return 0;
}
