// `acheron demo`: the hub model end to end in one process: a service with a
// method (progress, deadline) and a topic read by subscribers at different
// rates and modes, with every reply passed through the native wire codec.
#include <cmath>
#include <cstdio>
#include <thread>

#include "Commands.hh"
#include "acheron/core/Log.hh"
#include "acheron/hub/Registry.hh"
#include "acheron/wire/Envelope.hh"

namespace acheron::app {
namespace {

int run_demo(double seconds) {
  using namespace std::chrono;
  hub::Registry registry;
  auto sensor = registry.add("sensor", "a simulated four-channel sensor");
  auto readings = sensor->add_topic("readings", {.doc = "one value per channel"});

  sensor->add_method({.name = "integrate", .doc = "integrate sin(x) on [0, pi] in steps"},
                     [](const Payload& req, hub::CallContext& ctx) {
                       const auto steps = req.meta.value("steps", 1000);
                       double sum = 0, dx = M_PI / steps;
                       for (int i = 0; i < steps; ++i) {
                         sum += std::sin((i + 0.5) * dx) * dx;
                         if (i % (steps / 4) == 0) ctx.progress(Payload{{{"done", i}}, {}});
                         ctx.throw_if_stopped();
                       }
                       Payload out;
                       out.meta["integral"] = sum;
                       return out;
                     });
  sensor->add_method({.name = "slow", .doc = "sleeps until cancelled or past its deadline"},
                     [](const Payload&, hub::CallContext& ctx) {
                       while (!ctx.stop_requested()) std::this_thread::sleep_for(1ms);
                       ctx.throw_if_stopped();
                       return Payload{};
                     });

  // Method calls, through the wire codec as a front would.
  int progress = 0;
  auto reply = sensor->call("integrate", Payload{{{"steps", 100000}}, {}},
                            {.on_progress = [&](Payload) { ++progress; }});
  auto frames = wire::encode(wire::make_reply(wire::make_request("sensor", 1, "integrate", {}),
                                              wire::Command::final, reply.payload));
  auto decoded = wire::decode(frames);
  std::printf("call integrate: %d progress messages, integral = %.9f (exact 2), %zu wire frames\n",
              progress, decoded->payload.meta["integral"].get<double>(), frames.size());
  auto late = sensor->call("slow", {}, {.deadline = deadline_after(50ms)});
  std::printf("call slow with a 50 ms deadline: %s\n", std::string(to_string(late.status)).c_str());

  // Subscribers: every sample, a 10 Hz latest-value view, and a slow queue.
  auto all = readings->subscribe({.mode = hub::DeliveryMode::queue, .queue_capacity = 100000});
  auto ten_hz = readings->subscribe({.min_interval = 100ms});
  auto slow = readings->subscribe(
      {.key_regex = "ch[01]", .mode = hub::DeliveryMode::queue, .queue_capacity = 16});

  std::atomic<bool> running{true};
  std::uint64_t n_all = 0, n_ten = 0, n_slow = 0;
  std::thread fast_reader([&] {
    while (running || all->pending()) n_all += all->next(10ms).has_value();
  });
  std::thread ten_reader([&] {
    while (running) n_ten += ten_hz->next(10ms).has_value();
  });
  std::thread slow_reader([&] {
    while (running) {
      n_slow += slow->next(10ms).has_value();
      std::this_thread::sleep_for(20ms);  // a consumer that cannot keep up
    }
  });

  const auto start = Clock::now();
  const auto period = 1ms;
  std::uint64_t published = 0;
  for (int k = 0; Clock::now() - start < duration<double>(seconds); ++k) {
    std::this_thread::sleep_until(start + k * period);
    for (int ch = 0; ch < 4; ++ch) {
      Payload p;
      p.meta["channel"] = ch;
      p.arrays.push_back(Array::from_vector(std::vector<float>{float(std::sin(k * 0.01 + ch))}));
      readings->publish("ch" + std::to_string(ch), std::move(p));
      ++published;
    }
  }
  running = false;
  fast_reader.join();
  ten_reader.join();
  slow_reader.join();
  const double elapsed = duration<double>(Clock::now() - start).count();
  std::printf("topic readings: %llu samples published in %.2f s (%.0f/s)\n",
              (unsigned long long)published, elapsed, published / elapsed);
  std::printf("  queue subscriber, every key:     %llu received, %llu dropped\n",
              (unsigned long long)n_all, (unsigned long long)all->stats().dropped);
  std::printf("  cache subscriber, 100 ms/key:    %llu received, %llu superseded\n",
              (unsigned long long)n_ten, (unsigned long long)ten_hz->stats().replaced);
  std::printf("  slow queue subscriber, ch0|ch1:  %llu received, %llu dropped (capacity 16)\n",
              (unsigned long long)n_slow, (unsigned long long)slow->stats().dropped);
  const bool ok = n_all == published && std::abs(decoded->payload.meta["integral"].get<double>() - 2) < 1e-6 &&
                  late.status == StatusCode::deadline_exceeded;
  std::printf("demo %s\n", ok ? "ok" : "FAILED");
  return ok ? kOk : kFailure;
}

}  // namespace

void add_demo_command(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("demo", "run the main demonstration on the embedded default");
  auto seconds = std::make_shared<double>(1.0);
  cmd->add_option("--seconds", *seconds, "how long to publish")->check(CLI::Range(0.05, 60.0));
  cmd->callback([exit_code, seconds] { *exit_code = run_demo(*seconds); });
}

}  // namespace acheron::app
