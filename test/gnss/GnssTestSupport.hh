// Shared helpers of the gnss tests: fast timeouts, the default request for a
// simulated receiver, waiting for a condition.
#pragma once

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>

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

inline bool wait_until(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = 3000ms) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// A throwaway PKI made with the openssl command in `dir`: a CA (ca.pem), a
// server certificate for localhost and 127.0.0.1 (server.pem, server.key)
// and a client certificate (client.pem, client.key) signed by it, and an
// unrelated CA (other_ca.pem, other.key). nullopt without openssl.
struct TestPki {
  std::filesystem::path dir;
  std::string file(const char* name) const { return (dir / name).string(); }
};

inline std::optional<TestPki> make_test_pki(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string script =
      "cd '" + dir.string() + "' && " +
      "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext && " + "openssl req -x509 " +
      key + " -keyout ca.key -out ca.pem -days 2 -subj /CN=acheron-test-ca && " +
      "openssl req -x509 " + key +
      " -keyout other.key -out other_ca.pem -days 2 -subj /CN=acheron-other-ca && " +
      "openssl req " + key + " -keyout server.key -out server.csr -subj /CN=localhost && " +
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
      "-extfile san.ext -out server.pem && " +
      "openssl req " + key + " -keyout client.key -out client.csr -subj /CN=acheron-client && " +
      "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
      "-out client.pem";
  if (std::system(("(" + script + ") >/dev/null 2>&1").c_str()) != 0) return std::nullopt;
  return TestPki{dir};
}

}  // namespace acheron::gnss::test
