// Configuration of the DaqData server: the upstream
// daq_data_server_config.json schema (same keys) and the hp_io
// configuration an InitHpIo request or hp_io_config*.json carries.
// shared/specs/daqdata.md sections 6 and 7.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "acheron/wire/Pff.hh"

namespace acheron::daq {

enum class SimMode : std::uint8_t { uds, rpc, filesystem_poll, filesystem_pipe };
std::optional<SimMode> sim_mode_from_name(std::string_view name);
std::string_view to_string(SimMode mode);

struct UdsConfig {
  bool enabled = false;
  std::vector<wire::pff::Product> data_products;
  std::string socket_path_template = "/tmp/hashpipe_grpc.dp_{dp_name}.sock";
  // Seconds a started record may stall before its connection is dropped
  // (<= 0: never). Idleness between records is not an error.
  double read_timeout = 60;
  std::string socket_path(wire::pff::Product product) const;
};

struct SimConfig {
  std::string simulation_mode = "rpc";  // kept as text: an unknown mode fails InitHpIo
  std::vector<std::uint32_t> sim_module_ids{224};
  wire::pff::Product movie_type = wire::pff::Product::img16;
  wire::pff::Product ph_type = wire::pff::Product::ph256;
  double update_interval_seconds = 0.1;
  std::string movie_pff_path;
  std::string ph_pff_path;
  std::filesystem::path sim_data_dir = "daq_data/simulated_data_dir";
  std::string sim_run_dir_template = "module_{module_id}/obs_SIMULATE";
  std::string daq_active_file = "module_{module_id}.daq-active";
  int frames_per_pff = 100;
  int frame_limit = 1000;                             // filesystem modes; outside 0..999 means 1000
  std::vector<wire::pff::Product> uds_data_products;  // empty: movie_type + ph_type

  std::filesystem::path run_dir(std::uint32_t module) const;
};

struct ServerConfig {
  bool init_from_default = false;
  std::string default_hp_io_config_file;  // resolved against daq_data/config/ as upstream
  std::string unix_domain_socket = "unix:///tmp/daq_data.sock";
  std::string tcp_address = "[::]:50051";  // empty: no TCP listener (extension)
  int max_concurrent_rpcs = 100;
  double min_hp_io_update_interval_seconds = 0.001;
  double shutdown_grace_period = 5;
  std::string read_status_pipe_name = "read_status_2";
  UdsConfig uds;
  bool filesystem_poll = false;
  bool filesystem_pipe = false;
  SimConfig sim;
  std::size_t ingest_queue_size = 500;

  // Limits and security (extension keys; docs/daq.md "Limits and security").
  // Largest request message gRPC accepts, bytes; a larger one is refused with
  // RESOURCE_EXHAUSTED. The biggest image (img16 with a JSON header) needs a
  // few KiB.
  int max_receive_message_bytes = 64 << 20;
  // UploadImages calls served at once; one more is refused (RESOURCE_EXHAUSTED).
  int max_concurrent_uploads = 4;
  // Seconds an UploadImages call may go without a message before it is ended
  // with DEADLINE_EXCEEDED (<= 0: never).
  double upload_idle_timeout = 60;
  // InitHpIo calls waiting behind the running one; one more is refused
  // (RESOURCE_EXHAUSTED). They run one at a time on one thread.
  int max_queued_init_hp_io = 8;
  // HTTP/2 streams (calls) one connection may have open. Calls beyond it wait
  // in the client, so it must exceed max_concurrent_rpcs +
  // max_concurrent_uploads for those limits to answer RESOURCE_EXHAUSTED.
  // 0: max(1000, max_concurrent_rpcs + max_concurrent_uploads + 100).
  int max_streams_per_connection = 0;
  // Threads gRPC may create for synchronous methods (server reflection; the
  // DaqData methods run on the callback and asynchronous APIs and need none).
  int grpc_max_threads = 16;
  // Directories InitHpIo may read real data from: a data_dir must resolve
  // (symlinks and `..` followed) to one of them or below. Empty: none.
  std::vector<std::filesystem::path> allowed_data_roots{"/mnt/panoseti"};
  // TLS on the TCP listener (PEM files; empty cert: plaintext). With a client
  // CA, clients must present a certificate it signed. The unix socket stays
  // plaintext.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;

  // The unix socket's file path ("" when unix_domain_socket is not unix:).
  std::string unix_socket_path() const;
  // max_streams_per_connection with 0 resolved.
  int streams_per_connection() const;
};

// The hp_io configuration (InitHpIoRequest fields).
struct HpIoConfig {
  std::filesystem::path data_dir;
  double update_interval_seconds = 0.1;
  bool force = false;
  bool simulate_daq = false;
  std::vector<std::uint32_t> module_ids;
};

// Checks the limits and the TLS settings (throws SetupError saying what to
// change); parse_server_config and the Server constructor call it.
void validate_limits(const ServerConfig& config);

// Parse the server configuration (throws SetupError naming the bad key).
ServerConfig parse_server_config(const nlohmann::json& j);
ServerConfig load_server_config(const std::filesystem::path& path);
// The embedded default: no file needed; simulated data (rpc mode,
// synthesized frames, module 224) served from boot.
nlohmann::json default_server_config_json();
// The embedded hp_io configuration for simulation (hp_io_config_simulate.json).
nlohmann::json default_hp_io_config_json();

// The canonical form of `dir` if it exists and lies in one of `roots` or
// below, both with symlinks and `..` resolved; nullopt otherwise (roots that
// do not exist are skipped). Says nothing else about paths outside the roots.
std::optional<std::filesystem::path> resolve_under_roots(
    const std::filesystem::path& dir, const std::vector<std::filesystem::path>& roots);

HpIoConfig parse_hp_io_config(const nlohmann::json& j);
HpIoConfig load_hp_io_config(const std::filesystem::path& path);

// The text of a PEM file (TLS certificate, key or CA bundle). Throws
// SetupError naming `what` and the path if it cannot be read or holds no
// PEM block.
std::string read_pem_file(const std::filesystem::path& path, std::string_view what);

// Python str.format-style replacement of {name} in a template.
std::string format_template(std::string text, std::string_view name, std::string_view value);

}  // namespace acheron::daq
