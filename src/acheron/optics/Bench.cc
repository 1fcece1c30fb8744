#include "acheron/optics/Bench.hh"

#include <fmt/format.h>
#include <chrono>
#include <cstdlib>
#include <memory>

#include "acheron/optics/Engine.hh"
#include "acheron/optics/Sources.hh"

namespace acheron::optics {
namespace {

struct Ray {
  Vec3 origin, direction;
  std::int32_t exclude;
};

// Forwards to the real tracer and keeps the first `limit` rays it casts.
struct RecordingTracer {
  EmbreeTracer inner;
  std::vector<Ray>* rays;
  std::size_t limit;
  bool intersect(Vec3 o, Vec3 d, std::int32_t exclude, RayHit& hit) const {
    if (rays->size() < limit) rays->push_back({o, d, exclude});
    return inner.intersect(o, d, exclude, hit);
  }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

BenchReport run_bench(std::shared_ptr<const Detector> detector, const BenchOptions& o) {
  PhotonBatch batch;
  append_photons(batch, IsotropicSource{}, o.photons, 0, o.seed);

  BenchReport r;
  r.photons = o.photons;
  r.threads = o.threads;
  auto t_scene = std::chrono::steady_clock::now();
  Engine one(detector, {.threads = 1});
  r.scene_seconds = seconds_since(t_scene);
  r.embree_bytes = one.embree_bytes();
  Engine many(detector, {.threads = o.threads});
  std::unique_ptr<Engine> stepping;
  if (o.step_history > 0) {
    stepping = std::make_unique<Engine>(
        detector, EngineOptions{.threads = 1, .step_history = o.step_history});
  }

  // Record the rays the loop casts, to cast exactly those again with nothing
  // else around them.
  std::vector<Ray> rays;
  rays.reserve(o.ray_sample);
  const ParamsView params = detector->params(o.seed);
  RecordingTracer rec{one.tracer(), &rays, o.ray_sample};
  for (std::size_t i = 0; i < batch.size() && rays.size() < o.ray_sample; ++i) {
    Photon p = batch.get(i);
    propagate(p, params, rec);
  }
  const EmbreeTracer tracer = one.tracer();

  // The three measurements alternate and each keeps its best of `repeats`
  // rounds, so a noisy neighbour on a shared machine hurts all of them alike
  // and the ratios stay meaningful.
  double raw_best = 1e300, one_best = 1e300, many_best = 1e300, steps_best = 1e300;
  std::uint64_t steps_many = 0;
  const std::uint64_t loops_per_round = stepping ? 3 : 2;
  const std::uint64_t total = std::uint64_t(o.photons) * loops_per_round * std::uint64_t(o.repeats);
  std::uint64_t done = 0;
  auto starting = [&](std::string_view phase) {
    if (o.on_progress) o.on_progress(phase, done, total);
    done += o.photons;
  };
  for (int round = 0; round < o.repeats; ++round) {
    starting("1 thread");
    auto t0 = std::chrono::steady_clock::now();
    auto res1 = one.simulate(batch, o.seed);
    one_best = std::min(one_best, seconds_since(t0));
    r.steps = res1.diagnostics.steps;
    r.hits = res1.hits.size();

    std::size_t found = 0;
    t0 = std::chrono::steady_clock::now();
    for (const Ray& ray : rays) {
      RayHit hit;
      found += tracer.intersect(ray.origin, ray.direction, ray.exclude, hit);
    }
    raw_best = std::min(raw_best, seconds_since(t0));
    if (found > rays.size()) std::abort();  // keeps the casts from being optimised away

    starting(fmt::format("{} threads", o.threads));
    t0 = std::chrono::steady_clock::now();
    auto resn = many.simulate(batch, o.seed);
    many_best = std::min(many_best, seconds_since(t0));
    steps_many = resn.diagnostics.steps;

    if (stepping) {
      starting("step history");
      t0 = std::chrono::steady_clock::now();
      auto ress = stepping->simulate(batch, o.seed);
      steps_best = std::min(steps_best, seconds_since(t0));
      if (ress.hits.size() != r.hits) std::abort();  // recording must not change the physics
    }
  }
  if (o.on_progress) o.on_progress("done", done, total);
  r.step_history = o.step_history;
  if (stepping) {
    r.seconds_steps = steps_best;
    r.steps_cost = steps_best / one_best;
  }
  r.seconds_1 = one_best;
  r.seconds_n = many_best;
  r.raw_casts_per_s = rays.empty() ? 0 : rays.size() / raw_best;
  r.photons_per_s_1 = o.photons / r.seconds_1;
  r.photons_per_s_n = o.photons / r.seconds_n;
  r.steps_per_s_1 = r.steps / r.seconds_1;
  r.steps_per_s_n = steps_many / r.seconds_n;
  r.steps_vs_raw = r.raw_casts_per_s > 0 ? r.steps_per_s_1 / r.raw_casts_per_s : 0;
  r.thread_scaling = r.photons_per_s_n / r.photons_per_s_1;
  return r;
}

std::string BenchReport::table() const {
  std::string s;
  const double casts = photons ? double(steps) / photons : 0.0;
  s += fmt::format("photons {}  ray casts {}  hits {}  ({:.3f} casts/photon, {:.4f} hits/photon)\n",
                   photons, steps, hits, casts, photons ? double(hits) / photons : 0.0);
  s += fmt::format("scene built in {:.2f} s, Embree holds {:.1f} MiB\n", scene_seconds,
                   embree_bytes / (1024.0 * 1024.0));
  s += fmt::format("{:<34}{:>14}{:>14}{:>16}\n", "measurement", "photons/s", "casts/photon",
                   "steps/s");
  s += fmt::format("{:<34}{:>14.4g}{:>14.3f}{:>16.4g}\n", "stepping loop, 1 thread",
                   photons_per_s_1, casts, steps_per_s_1);
  s += fmt::format("{:<34}{:>14.4g}{:>14.3f}{:>16.4g}\n",
                   fmt::format("stepping loop, {} threads", threads), photons_per_s_n, casts,
                   steps_per_s_n);
  s += fmt::format("{:<34}{:>14}{:>14}{:>16.4g}\n", "raw Embree casts, same rays, 1 thr", "-", "-",
                   raw_casts_per_s);
  s += fmt::format("ratio steps/s : raw casts/s         {:.3f}   (target >= 0.5)\n", steps_vs_raw);
  s += fmt::format("ratio {} threads : 1 thread          {:.3f}   (target >= 1.8)\n", threads,
                   thread_scaling);
  if (step_history > 0) {
    s += fmt::format("{:<34}{:>14.4g}\n",
                     fmt::format("stepping loop, 1 thr, {} steps kept", step_history),
                     seconds_steps > 0 ? photons / seconds_steps : 0.0);
    s += fmt::format("ratio step history on : off (time) {:.3f}\n", steps_cost);
  }
  return s;
}

}  // namespace acheron::optics
