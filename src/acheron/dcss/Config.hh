// Configuration of a DHS process (one TOML file per DHS, dcss-xos.md §9.5):
// plain structs with embedded defaults (localhost, never a production host),
// and the IO that fills them from a file with errors naming file, line and key.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "acheron/dcss/Dhs.hh"
#include "acheron/dcss/JpegReceiver.hh"
#include "acheron/dcss/Session.hh"

namespace acheron::dcss {

// The loop DHS (§9). Defaults follow loop-dhs's SIM831 configuration.
struct LoopConfig {
  double osci_delta = 180.0;  // degrees of gonio_phi per collectLoopImages
  double osci_time = 3.0;     // seconds; expected frames = osci_time × video_fps
  double video_fps = 30.0;
  double collect_grace_s = 30.0;      // collectLoopImages fails `timeout` after osci_time + this
  std::string frame_source = "push";  // push: the Axis server POSTs; mjpeg: read its stream
  bool save_image_files = false;
  std::string debug_dir = "loop-dhs-debug";
  struct Automl {
    std::string host = "127.0.0.1";
    std::uint16_t port = 5000;
    std::string model = "default";  // /v1/models/<model>
    double threshold = 0.11;
    int scan_n_results = 5;
    double timeout_s = 10.0;          // per predict request
    double health_interval_s = 30.0;  // GET /v1/models/<model>
    int max_in_flight = 4;            // concurrent predict requests
  } automl;
  struct Axis {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8888;
    int camera = 1;
    std::string user, password;  // optional Basic auth
    double timeout_s = 5.0;
  } axis;
  JpegReceiverOptions jpeg_receiver;  // where the Axis server POSTs (push source)
};

struct DhsConfig {
  std::string kind = "loop";  // loop: the loop DHS; sim: simulated devices only
  DhsOptions dhs;
  SessionOptions dcss;
  LoopConfig loop;
  std::string source = "<built-in default>";
};

// The embedded default (a loop DHS named loopDHS on localhost).
DhsConfig default_dhs_config();
DhsConfig parse_dhs_config(std::string_view toml, std::string source = "<string>");
DhsConfig load_dhs_config(const std::filesystem::path& path);

// `acheron dhs BEAMLINE [DHSNAME]`: BEAMLINE.toml from $ACHERON_DHS_CONFIG_DIR,
// ./config, then /etc/acheron/dhs. Throws SetupError naming every place tried.
std::filesystem::path find_beamline_config(const std::string& beamline);
std::vector<std::filesystem::path> beamline_config_dirs();

// The default configuration as a commented TOML file (`acheron dhs default`).
std::string default_dhs_config_toml();

}  // namespace acheron::dcss
