// Shared helpers of the gnss tests: fast timeouts, the default request for a
// simulated receiver, waiting for a condition.
#pragma once

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "TestPki.hh"
#include "TestWait.hh"
#include "acheron/gnss/Config.hh"
#include "acheron/gnss/Json5.hh"
#include "acheron/gnss/Service.hh"
#include "acheron/gnss/Simulator.hh"

namespace acheron::gnss::test {

using namespace std::chrono_literals;

// Timeouts short enough for tests (a pseudo-terminal answers in
// microseconds) yet long enough for a loaded CI machine under ASan.
inline ServiceOptions fast_service() {
  ServiceOptions o;
  o.mon_ver_timeout = 1000ms;
  o.uniqid_timeout = 1000ms;
  o.ack_timeout = 1500ms;
  o.valget_timeout = 1500ms;
  o.valget_quiet = 100ms;
  o.signal_pause = 0ms;
  return o;
}

// A simulator that emits one simulated second every 40 ms.
inline SimOptions fast_sim() {
  SimOptions o;
  o.period = 40ms;
  return o;
}

inline nlohmann::json request_for(const SimulatedF9t& sim) {
  auto req = chip_request_config(parse_json5(default_f9t_config_json5()), 0);
  req["device"] = sim.device_path();
  return req;
}

using acheron::test_support::eventually;

using acheron::test_support::make_test_pki;
using acheron::test_support::TestPki;

}  // namespace acheron::gnss::test
