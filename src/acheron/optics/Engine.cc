#include "acheron/optics/Engine.hh"

#include <algorithm>
#include <mutex>
#include <string>

#include "acheron/core/Error.hh"

namespace acheron::optics {

void PhotonBatch::reserve(std::size_t n) {
  for (auto* v : {&x, &y, &z, &dx, &dy, &dz, &px, &py, &pz, &wavelength, &time}) v->reserve(n);
  for (auto* v : {&history, &event, &index}) v->reserve(n);
  last_hit_triangle.reserve(n);
}

void PhotonBatch::resize(std::size_t n) {
  for (auto* v : {&x, &y, &z, &dx, &dy, &dz, &px, &py, &pz, &wavelength, &time}) v->resize(n);
  for (auto* v : {&history, &event, &index}) v->resize(n);
  last_hit_triangle.resize(n, -1);
}

void PhotonBatch::push_back(const Photon& p) {
  x.push_back(p.position.x);
  y.push_back(p.position.y);
  z.push_back(p.position.z);
  dx.push_back(p.direction.x);
  dy.push_back(p.direction.y);
  dz.push_back(p.direction.z);
  px.push_back(p.polarization.x);
  py.push_back(p.polarization.y);
  pz.push_back(p.polarization.z);
  wavelength.push_back(p.wavelength);
  time.push_back(p.time);
  history.push_back(p.history);
  event.push_back(p.event);
  index.push_back(p.index);
  last_hit_triangle.push_back(p.last_hit_triangle);
}

Photon PhotonBatch::get(std::size_t i) const {
  Photon p;
  p.position = {x[i], y[i], z[i]};
  p.direction = {dx[i], dy[i], dz[i]};
  p.polarization = {px[i], py[i], pz[i]};
  p.wavelength = wavelength[i];
  p.time = time[i];
  p.history = history[i];
  p.event = event[i];
  p.index = index[i];
  p.last_hit_triangle = last_hit_triangle.empty() ? -1 : last_hit_triangle[i];
  return p;
}

void PhotonBatch::set(std::size_t i, const Photon& p) {
  x[i] = p.position.x;
  y[i] = p.position.y;
  z[i] = p.position.z;
  dx[i] = p.direction.x;
  dy[i] = p.direction.y;
  dz[i] = p.direction.z;
  px[i] = p.polarization.x;
  py[i] = p.polarization.y;
  pz[i] = p.polarization.z;
  wavelength[i] = p.wavelength;
  time[i] = p.time;
  history[i] = p.history;
  event[i] = p.event;
  index[i] = p.index;
  if (!last_hit_triangle.empty()) last_hit_triangle[i] = p.last_hit_triangle;
}

void PhotonBatch::check() const {
  const std::size_t n = x.size();
  bool ok = true;
  for (const auto* v : {&y, &z, &dx, &dy, &dz, &px, &py, &pz, &wavelength, &time}) {
    ok = ok && v->size() == n;
  }
  for (const auto* v : {&history, &event, &index}) ok = ok && v->size() == n;
  ok = ok && (last_hit_triangle.empty() || last_hit_triangle.size() == n);
  if (!ok) {
    throw Failure(StatusCode::invalid_argument,
                  "photon batch arrays differ in length (every component needs one value per "
                  "photon)");
  }
}

bool photon_hit_channel(const Photon& p, const ParamsView& params, std::uint32_t* channel) {
  if (!(p.history & history::surface_detect)) return false;
  TriangleData tri;
  if (!triangle_record(params, p.last_hit_triangle, tri)) return false;
  const std::int32_t ch = tri.solid < params.n_solids ? params.solid_channel[tri.solid] : -1;
  if (ch < 0) return false;
  *channel = static_cast<std::uint32_t>(ch);
  return true;
}

Engine::Engine(std::shared_ptr<const Detector> detector, EngineOptions options)
    : detector_(std::move(detector)), options_(options) {
  ACHERON_EXPECT(detector_ != nullptr, "engine needs a detector (none given) load one first");
  if (options_.step_history > kMaxStepHistory) {
    throw SetupError("step history of " + std::to_string(options_.step_history) +
                     " steps is too long (a sequence word holds " +
                     std::to_string(kMaxStepHistory) + " steps of 4 bits) use 0 to " +
                     std::to_string(kMaxStepHistory));
  }
  scene_ = std::make_unique<EmbreeScene>(detector_->geometry());
  pool_ = std::make_unique<ThreadPool>(options_.threads);
}

SimulationResult Engine::simulate(const PhotonBatch& photons, std::uint64_t seed) const {
  photons.check();
  // Two instantiations of one loop: without a step history nothing is
  // recorded per step (NoStepRecorder compiles away).
  return options_.step_history > 0 ? run<StepRecorder>(photons, seed)
                                   : run<NoStepRecorder>(photons, seed);
}

template <class Recorder>
SimulationResult Engine::run(const PhotonBatch& photons, std::uint64_t seed) const {
  const std::size_t n = photons.size();
  const ParamsView params = detector_->params(seed);
  const EmbreeTracer tracer = scene_->tracer(true);
  const std::size_t chunk = std::max<std::size_t>(1, options_.chunk);
  const std::size_t n_chunks = (n + chunk - 1) / chunk;

  // Each chunk writes only its own slot; concatenating slots in chunk order
  // keeps hits in input order whatever the thread count.
  std::vector<std::vector<HitRecord>> chunk_hits(n_chunks);
  std::vector<std::vector<HitSteps>> chunk_steps(n_chunks);
  std::vector<Diagnostics> chunk_diag(n_chunks);
  SimulationResult result;
  if (options_.keep_final_states) result.final_states.resize(n);
  if (options_.keep_tracks) result.tracks.resize(n);
  if (options_.keep_tracks && Recorder::enabled) result.track_steps.resize(n);

  pool_->parallel_for(n_chunks, 1, [&](std::size_t c0, std::size_t c1) {
    for (std::size_t c = c0; c < c1; ++c) {
      // Accumulate in locals and store once: neighbouring slots share cache
      // lines, and per-photon writes to them from two threads would thrash.
      std::vector<HitRecord> hits;
      std::vector<HitSteps> steps;
      Diagnostics diag;
      const std::size_t end = std::min(n, (c + 1) * chunk);
      for (std::size_t i = c * chunk; i < end; ++i) {
        Photon p = photons.get(i);
        Recorder recorder;
        if constexpr (Recorder::enabled) recorder.limit = options_.step_history;
        const PropagateResult r = propagate(p, params, tracer, recorder);
        diag.record(r);
        std::uint32_t recorded_steps = 0;
        std::uint64_t sequence = 0;
        if constexpr (Recorder::enabled) {
          recorded_steps = recorder.steps;
          sequence = recorder.sequence;
          if (options_.keep_tracks) {
            result.track_steps[i] = {r.counts.boundaries, r.counts.scatters, r.counts.reemissions,
                                     recorded_steps, sequence};
          }
        }
        std::uint32_t channel;
        const bool hit = photon_hit_channel(p, params, &channel);
        if (options_.keep_tracks) {
          result.tracks[i] = {p.event,
                              p.index,
                              {p.position.x, p.position.y, p.position.z},
                              {p.direction.x, p.direction.y, p.direction.z},
                              {p.polarization.x, p.polarization.y, p.polarization.z},
                              p.wavelength,
                              p.time,
                              p.history,
                              hit ? static_cast<std::int32_t>(channel) : -1,
                              r.counts.boundaries,
                              r.counts.scatters,
                              r.counts.reemissions};
        }
        if (hit) {
          hits.push_back({channel,
                          p.event,
                          p.index,
                          p.history,
                          p.time,
                          p.wavelength,
                          {p.position.x, p.position.y, p.position.z},
                          {p.direction.x, p.direction.y, p.direction.z},
                          {p.polarization.x, p.polarization.y, p.polarization.z},
                          p.weight});
          steps.push_back({r.counts.boundaries, r.counts.scatters, r.counts.reemissions,
                           recorded_steps, sequence});
        }
        if (options_.keep_final_states) result.final_states.set(i, p);
      }
      chunk_hits[c] = std::move(hits);
      chunk_steps[c] = std::move(steps);
      chunk_diag[c] = diag;
    }
  });
  std::size_t total = 0;
  for (const auto& h : chunk_hits) total += h.size();
  result.hits.reserve(total);
  for (auto& h : chunk_hits) result.hits.insert(result.hits.end(), h.begin(), h.end());
  result.hit_steps.reserve(total);
  for (auto& h : chunk_steps) result.hit_steps.insert(result.hit_steps.end(), h.begin(), h.end());
  for (const auto& d : chunk_diag) result.diagnostics += d;
  return result;
}

}  // namespace acheron::optics
