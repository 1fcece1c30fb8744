#include "acheron/daq/HpIo.hh"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fstream>

#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"

namespace acheron::daq {

namespace fs = std::filesystem;

HpIo::HpIo(const ServerConfig& server, HpIoConfig config, ImageStore& store)
    : config_(std::move(config)) {
  FrameSink sink = [&store](RawFrame f) { return store.push(std::move(f)); };
  std::optional<SimMode> mode;
  if (config_.simulate_daq) {
    mode = sim_mode_from_name(server.sim.simulation_mode);
    if (!mode)
      throw SetupError(
          fmt::format("unknown simulation_mode '{}' (valid: uds, rpc, "
                      "filesystem_poll, filesystem_pipe)",
                      server.sim.simulation_mode));
    config_.data_dir = server.sim.sim_data_dir;
    config_.module_ids.clear();
  }
  try {
    const bool file_sim = mode == SimMode::filesystem_poll || mode == SimMode::filesystem_pipe;
    if (file_sim)  // the run directories exist before the sources look for them
      simulator_ = std::make_unique<Simulator>(server.sim, *mode, server.uds,
                                               server.read_status_pipe_name, sink);
    if (server.uds.enabled) sources_.push_back(std::make_unique<UdsSource>(server.uds, sink));
    if (server.filesystem_poll)
      sources_.push_back(std::make_unique<FsPollSource>(
          config_.data_dir,
          std::max(config_.update_interval_seconds, server.min_hp_io_update_interval_seconds),
          sink));
    if (server.filesystem_pipe)
      sources_.push_back(
          std::make_unique<FsPipeSource>(config_.data_dir, server.read_status_pipe_name, sink));
    if (sources_.empty() && !config_.simulate_daq)
      throw SetupError("no acquisition method is enabled; enable one under acquisition_methods");
    if (mode && !file_sim)
      simulator_ = std::make_unique<Simulator>(server.sim, *mode, server.uds,
                                               server.read_status_pipe_name, sink);
    if (simulator_) simulator_->start();
  } catch (...) {
    stop();
    throw;
  }
  log::info("daq: hp_io started (data_dir '{}', sources [{}]{})", config_.data_dir.string(),
            fmt::join(source_names(), ", "),
            mode ? fmt::format(", simulation {}", to_string(*mode)) : std::string{});
}

HpIo::~HpIo() {
  stop();
}

void HpIo::stop() {
  if (simulator_) simulator_->stop();
  for (auto& s : sources_) s->stop();
  sources_.clear();
  simulator_.reset();
}

std::vector<std::string_view> HpIo::source_names() const {
  std::vector<std::string_view> names;
  for (const auto& s : sources_) names.push_back(s->name());
  return names;
}

bool process_running(std::string_view name) {
  std::error_code ec;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const auto pid = it->path().filename().string();
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(it->path() / "comm");
    std::string comm;
    if (std::getline(in, comm) && comm == name) return true;
  }
  return false;
}

}  // namespace acheron::daq
