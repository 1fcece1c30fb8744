// The DAQ simulator (spec 7): plays movie and pulse-height frames, from PFF
// files when configured and readable, else synthesized with consistent
// White-Rabbit stamps, into one of four paths: the server's data sockets
// (uds), direct ingest (rpc), or PFF files in a simulated run directory that
// the filesystem sources watch (filesystem_poll, filesystem_pipe).
#pragma once

#include <atomic>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "acheron/daq/Config.hh"
#include "acheron/daq/Sources.hh"

namespace acheron::daq {

// Frames of one data product, cycled.
class FrameSource final {
 public:
  // Loads path when it is a readable PFF of product; otherwise synthesizes.
  FrameSource(wire::pff::Product product, const std::string& path);
  wire::pff::Product product() const noexcept { return product_; }
  bool from_file() const noexcept { return !frames_.empty(); }
  // The next frame as header + pixels (synthesized frames carry the current
  // host time).
  void next(std::string* header, std::string* pixels);

 private:
  wire::pff::Product product_;
  std::vector<std::pair<std::string, std::string>> frames_;
  std::size_t index_ = 0;
  std::uint32_t counter_ = 0;
  std::mt19937 rng_{12345};
};

class Simulator final {
 public:
  // Throws SetupError for an unknown mode or when its outputs cannot be
  // created. rpc mode pushes into sink; the file modes create the run
  // directories at once (before the sources start).
  Simulator(const SimConfig& config, SimMode mode, const UdsConfig& uds, std::string pipe_name,
            FrameSink sink);
  ~Simulator();
  // Starts producing (uds connects to the server's sockets first).
  void start();
  void stop();  // also removes the simulated files
  std::uint64_t frames_sent() const noexcept { return sent_; }

 private:
  void run();

  SimConfig config_;
  SimMode mode_;
  UdsConfig uds_;
  std::string pipe_name_;
  FrameSink sink_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> sent_{0};
  std::thread thread_;
  std::vector<std::filesystem::path> created_;  // run dirs to remove
};

}  // namespace acheron::daq
