// Micro-benchmarks of the core model: envelope encode/decode (zero-copy
// arrays) against copying the same bytes, and topic fan-out.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "acheron/hub/Topic.hh"
#include "acheron/wire/Envelope.hh"

namespace {
using namespace acheron;

Payload make_payload(std::size_t bytes) {
  Payload p;
  p.meta = {{"event", 12}, {"source", "bench"}};
  p.arrays.push_back(Array::zeros(DType::float32, {static_cast<std::int64_t>(bytes / 4)}, "data"));
  return p;
}

// Envelope round trip: cost independent of the array size (no copies).
void BM_EnvelopeRoundTrip(benchmark::State& state) {
  const auto req = wire::make_request("svc", 1, "method", make_payload(state.range(0)), 1000);
  for (auto _ : state) {
    auto frames = wire::encode(req);
    auto back = wire::decode(frames);
    benchmark::DoNotOptimize(back);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_EnvelopeRoundTrip)->Arg(64)->Arg(1 << 20)->Arg(16 << 20);

// Baseline: one memcpy of the same array bytes (what a copying codec pays).
void BM_CopyBaseline(benchmark::State& state) {
  std::vector<char> src(state.range(0)), dst(state.range(0));
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), src.size());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_CopyBaseline)->Arg(64)->Arg(1 << 20)->Arg(16 << 20);

// Publishing one sample to N queue subscribers.
void BM_TopicFanOut(benchmark::State& state) {
  hub::Topic topic("t");
  std::vector<std::shared_ptr<hub::Subscription>> subs;
  for (int i = 0; i < state.range(0); ++i) {
    subs.push_back(topic.subscribe({.mode = hub::DeliveryMode::queue, .queue_capacity = 64}));
  }
  Payload p = make_payload(64);
  for (auto _ : state) topic.publish("k", p);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TopicFanOut)->Arg(1)->Arg(8)->Arg(64);

}  // namespace

BENCHMARK_MAIN();
