// hp_io: the running set of data sources (and the simulator when
// simulate_daq is set) that feed the image store, built from the server
// configuration and one InitHpIo request (spec 5.3 step 5, 5.5, 7).
#pragma once

#include <memory>
#include <vector>

#include "acheron/daq/Config.hh"
#include "acheron/daq/ImageStore.hh"
#include "acheron/daq/Simulator.hh"
#include "acheron/daq/Sources.hh"

namespace acheron::daq {

class HpIo final {
 public:
  // Starts every enabled source (and the simulator). Throws SetupError with
  // the reason when hp_io cannot become valid.
  HpIo(const ServerConfig& server, HpIoConfig config, ImageStore& store);
  ~HpIo();
  HpIo(const HpIo&) = delete;
  HpIo& operator=(const HpIo&) = delete;

  // Stops the simulator and the sources, unlinks the data sockets and
  // removes the simulated files. Idempotent.
  void stop();
  const HpIoConfig& config() const noexcept { return config_; }
  std::vector<std::string_view> source_names() const;

 private:
  HpIoConfig config_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::unique_ptr<Simulator> simulator_;
};

// True if a process whose name is exactly `name` runs (Linux /proc).
bool process_running(std::string_view name);

}  // namespace acheron::daq
