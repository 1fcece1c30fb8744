// Fuzz target: InitHpIo as the DaqData server runs it. The low seven bits of
// the first byte pick one of five server configurations (parsed by
// parse_server_config from JSON): simulation by direct ingest, filesystem
// polling, named pipes or unix sockets, each with the matching source
// enabled, or no acquisition method at all. Each message of the rest of the
// input (FuzzFrames.hh framing, at most four) is one InitHpIo: protobuf
// bytes of an InitHpIoRequest, turned into an HpIoConfig as the gRPC handler
// does, or, when the first byte's top bit is set, an hp_io configuration
// file's JSON (parse_hp_io_config). Each goes to Server::init_hp_io, the
// argument checks and hp_io start the RPC runs; the gRPC listeners are
// never started.
//
// Every path the servers write (simulated run directories, pipes, sockets)
// lies in one temporary directory, removed at exit. The request's data_dir
// is only looked at (stat) unless a process named hashpipe runs, and then
// real-DAQ requests are skipped here, so that no source watches a directory
// outside it. (The real-DAQ check itself reads /proc/*/comm.)
//
// Invariants: nothing crashes (sources and simulator run on their own
// threads with the request's interval); a request is answered OK or
// INVALID_ARGUMENT / FAILED_PRECONDITION; an accepted request has an
// interval that is a number no smaller than the server's minimum; a
// successful one leaves hp_io valid; a failed start says why.
#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "FuzzFrames.hh"
#include "FuzzInput.hh"
#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"
#include "acheron/daq/HpIo.hh"
#include "acheron/daq/Server.hh"
#include "acheron/daqdata.pb.h"

namespace {

using namespace acheron;
namespace fs = std::filesystem;

constexpr int kServers = 5;
constexpr int kOk = 0, kInvalidArgument = 3, kFailedPrecondition = 9;

struct Fixture {
  fs::path dir;
  std::vector<std::unique_ptr<daq::Server>> servers;
  bool hashpipe = false;
};

daq::ServerConfig server_config(const fs::path& dir, int which) {
  auto j = daq::default_server_config_json();
  j["init_from_default"] = false;
  j["tcp_address"] = "";
  j["unix_domain_socket"] = "unix://" + (dir / "grpc.sock").string();
  auto& sim = j["simulate_daq_cfg"];
  sim["update_interval_seconds"] = 0.01;
  sim["sim_module_ids"] = {3, 254};
  sim["filesystem_cfg"]["sim_data_dir"] = (dir / "sim").string();
  sim["strategies"]["filesystem_poll"]["frames_per_pff"] = 5;
  sim["strategies"]["filesystem_pipe"]["frames_per_pff"] = 5;
  auto& methods = j["acquisition_methods"];
  methods["uds"]["socket_path_template"] = (dir / "dp_{dp_name}.sock").string();
  methods["uds"]["read_timeout"] = 1;
  switch (which) {
    case 0:  // direct ingest, and a poller on the same (simulated) data_dir
      sim["simulation_mode"] = "rpc";
      methods["filesystem_poll"]["enabled"] = true;
      break;
    case 1:
      sim["simulation_mode"] = "filesystem_poll";
      methods["filesystem_poll"]["enabled"] = true;
      j["min_hp_io_update_interval_seconds"] = 0.5;
      break;
    case 2:
      sim["simulation_mode"] = "filesystem_pipe";
      methods["filesystem_pipe"]["enabled"] = true;
      break;
    case 3:
      sim["simulation_mode"] = "uds";
      methods["uds"]["enabled"] = true;
      break;
    default:  // no acquisition method: only simulated requests can start
      sim["simulation_mode"] = "rpc";
      break;
  }
  return daq::parse_server_config(j);
}

Fixture& fixture() {
  static Fixture* f = [] {
    log::set_level("off");
    auto* fx = new Fixture;
    std::string pattern = (fs::temp_directory_path() / "acheron-fuzz-hpio-XXXXXX").string();
    if (!mkdtemp(pattern.data())) std::abort();
    fx->dir = pattern;
    for (int i = 0; i < kServers; ++i) {
      const fs::path dir = fx->dir / fmt::format("server{}", i);
      fs::create_directories(dir);
      fx->servers.push_back(std::make_unique<daq::Server>(server_config(dir, i)));
    }
    fx->hashpipe = daq::process_running("hashpipe");
    std::atexit([] {
      auto& self = fixture();
      for (auto& s : self.servers) s->shutdown();
      std::error_code ec;
      fs::remove_all(self.dir, ec);
    });
    return fx;
  }();
  return *f;
}

// The gRPC handler's conversion of the request.
daq::HpIoConfig from_request(const daqdata::InitHpIoRequest& request) {
  daq::HpIoConfig c;
  c.data_dir = request.data_dir();
  c.update_interval_seconds = request.update_interval_seconds();
  c.force = request.force();
  c.simulate_daq = request.simulate_daq();
  c.module_ids.assign(request.module_ids().begin(), request.module_ids().end());
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& fx = fixture();
  if (size == 0) return 0;
  auto& server = *fx.servers[(data[0] & 0x7F) % kServers];
  const bool as_file = data[0] & 0x80;
  const auto frames = fuzz::split_frames(data + 1, size - 1);
  for (std::size_t i = 0; i < frames.size() && i < 4; ++i) {
    const auto& frame = frames[i];
    daq::HpIoConfig config;
    if (as_file) {
      const auto j = nlohmann::json::parse(
          reinterpret_cast<const char*>(frame.data()),
          reinterpret_cast<const char*>(frame.data()) + frame.size(), nullptr, false);
      if (j.is_discarded()) continue;
      try {
        config = daq::parse_hp_io_config(j);
      } catch (const SetupError&) {
        continue;
      }
    } else {
      daqdata::InitHpIoRequest request;
      if (!request.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) continue;
      config = from_request(request);
    }
    if (!config.simulate_daq && fx.hashpipe) continue;  // would watch config.data_dir
    const double interval = config.update_interval_seconds;
    const auto result = server.init_hp_io(config);
    FUZZ_CHECK(result.code == kOk || result.code == kInvalidArgument ||
               result.code == kFailedPrecondition);
    if (result.code != kOk) {
      FUZZ_CHECK(!result.message.empty());
      continue;
    }
    FUZZ_CHECK(!std::isnan(interval) &&
               interval >= server.config().min_hp_io_update_interval_seconds);
    if (result.success) {
      FUZZ_CHECK(server.stats().hp_io_valid);
    } else {
      FUZZ_CHECK(!result.message.empty());
    }
  }
  return 0;
}
