#include "acheron/daq/Config.hh"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <limits>
#include <type_traits>

#include "acheron/core/Error.hh"

namespace acheron::daq {

namespace pff = wire::pff;
using nlohmann::json;

namespace {

// nlohmann converts a JSON real to an integer type with a plain cast, which
// is undefined outside the type's range: true if `v` (or each element of a
// list `v`) converts to T.
template <class T>
bool convertible(const json& v) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (!v.is_number_float()) return true;
    const double d = v.get<double>();  // never NaN: JSON text cannot hold it
    return d > static_cast<double>(std::numeric_limits<T>::min()) - 1.0 &&
           d < static_cast<double>(std::numeric_limits<T>::max()) + 1.0;
  } else if constexpr (requires { typename T::value_type; } && !std::is_same_v<T, std::string>) {
    return !v.is_array() || std::all_of(v.begin(), v.end(), convertible<typename T::value_type>);
  } else {
    return true;
  }
}

template <class T>
T get(const json& j, const char* key, T fallback, std::string_view where) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  if (!convertible<T>(j[key]))
    throw SetupError(
        fmt::format("{}: key '{}' holds a number out of range ({}); fix the configuration", where,
                    key, j[key].dump()));
  try {
    return j[key].get<T>();
  } catch (const json::exception& e) {
    throw SetupError(fmt::format("{}: key '{}' has the wrong type ({}); fix the configuration",
                                 where, key, e.what()));
  }
}

pff::Product product(const json& v, std::string_view where) {
  if (!v.is_string())
    throw SetupError(
        fmt::format("{}: a data product must be a string (img8, img16, ph256 or "
                    "ph1024)",
                    where));
  auto p = pff::product_from_name(v.get<std::string>());
  if (!p)
    throw SetupError(
        fmt::format("{}: unknown data product '{}' (valid: img8, img16, ph256, "
                    "ph1024); fix the configuration",
                    where, v.get<std::string>()));
  return *p;
}

std::vector<pff::Product> products(const json& j, const char* key, std::string_view where) {
  std::vector<pff::Product> out;
  if (!j.is_object() || !j.contains(key)) return out;
  if (!j[key].is_array())
    throw SetupError(fmt::format("{}: '{}' must be a list of data products", where, key));
  for (const auto& v : j[key]) out.push_back(product(v, where));
  return out;
}

json read_json(const std::filesystem::path& path, std::string_view what) {
  std::ifstream in(path);
  if (!in)
    throw SetupError(
        fmt::format("cannot read {} '{}' (no such file or no permission); pass an "
                    "existing JSON file",
                    what, path.string()));
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw SetupError(
        fmt::format("{} '{}' is not valid JSON ({}); fix the file", what, path.string(), e.what()));
  }
}

}  // namespace

void validate_limits(const ServerConfig& c) {
  // 16 KiB holds the largest image of any data product with its header.
  if (c.max_receive_message_bytes < (16 << 10))
    throw SetupError(fmt::format(
        "max_receive_message_bytes is {} (an img16 image needs several KiB); set at least 16384",
        c.max_receive_message_bytes));
  if (c.max_concurrent_uploads < 1) throw SetupError("max_concurrent_uploads must be at least 1");
  if (c.max_queued_init_hp_io < 0)
    throw SetupError("max_queued_init_hp_io must be 0 or more (0: no InitHpIo waits)");
  if (c.grpc_max_threads < 2)
    throw SetupError("grpc_max_threads must be at least 2 (one thread polls for calls)");
  const long needed = static_cast<long>(c.max_concurrent_rpcs) + c.max_concurrent_uploads;
  if (c.max_streams_per_connection != 0 && c.max_streams_per_connection <= needed)
    throw SetupError(fmt::format(
        "max_streams_per_connection ({}) must exceed max_concurrent_rpcs + max_concurrent_uploads "
        "({}): calls beyond it wait in the client instead of being refused; raise it or set 0 "
        "(automatic)",
        c.max_streams_per_connection, needed));
  if (c.tls_cert_file.empty() != c.tls_key_file.empty())
    throw SetupError(
        "TLS needs both a certificate and its private key (tls_cert_file and tls_key_file, "
        "--tls-cert and --tls-key); give both or neither");
  if (!c.tls_client_ca_file.empty() && c.tls_cert_file.empty())
    throw SetupError(
        "a client CA (tls_client_ca_file, --tls-client-ca) needs TLS: give the server's "
        "certificate and key too");
}

int ServerConfig::streams_per_connection() const {
  if (max_streams_per_connection > 0) return max_streams_per_connection;
  return std::max(1000, max_concurrent_rpcs + max_concurrent_uploads + 100);
}

std::optional<std::filesystem::path> resolve_under_roots(
    const std::filesystem::path& dir, const std::vector<std::filesystem::path>& roots) {
  namespace fs = std::filesystem;
  if (dir.empty()) return std::nullopt;
  std::error_code ec;
  const fs::path real = fs::canonical(dir, ec);
  if (ec) return std::nullopt;
  for (const auto& root : roots) {
    if (root.empty()) continue;
    const fs::path real_root = fs::canonical(root, ec);
    if (ec) continue;
    // Whole components: /data/run2 is not under /data/run.
    auto [r, d] = std::mismatch(real_root.begin(), real_root.end(), real.begin(), real.end());
    if (r == real_root.end()) return real;
  }
  return std::nullopt;
}

std::optional<SimMode> sim_mode_from_name(std::string_view name) {
  if (name == "uds") return SimMode::uds;
  if (name == "rpc") return SimMode::rpc;
  if (name == "filesystem_poll") return SimMode::filesystem_poll;
  if (name == "filesystem_pipe") return SimMode::filesystem_pipe;
  return std::nullopt;
}

std::string_view to_string(SimMode mode) {
  switch (mode) {
    case SimMode::uds:
      return "uds";
    case SimMode::rpc:
      return "rpc";
    case SimMode::filesystem_poll:
      return "filesystem_poll";
    case SimMode::filesystem_pipe:
      return "filesystem_pipe";
  }
  return "?";
}

std::string format_template(std::string text, std::string_view name, std::string_view value) {
  const std::string field = fmt::format("{{{}}}", name);
  for (auto pos = text.find(field); pos != std::string::npos;
       pos = text.find(field, pos + value.size()))
    text.replace(pos, field.size(), value);
  return text;
}

std::string UdsConfig::socket_path(pff::Product p) const {
  return format_template(socket_path_template, "dp_name", pff::info(p).name);
}

std::filesystem::path SimConfig::run_dir(std::uint32_t module) const {
  return sim_data_dir / format_template(sim_run_dir_template, "module_id", std::to_string(module));
}

std::string ServerConfig::unix_socket_path() const {
  constexpr std::string_view prefix = "unix://";
  if (unix_domain_socket.rfind(prefix, 0) == 0) return unix_domain_socket.substr(prefix.size());
  if (unix_domain_socket.rfind("unix:", 0) == 0) return unix_domain_socket.substr(5);
  return {};
}

ServerConfig parse_server_config(const json& j) {
  constexpr std::string_view where = "server configuration";
  if (!j.is_object())
    throw SetupError(
        "server configuration must be a JSON object; start from `acheron daq "
        "default-config`");
  ServerConfig c;
  c.init_from_default = get(j, "init_from_default", c.init_from_default, where);
  c.default_hp_io_config_file =
      get(j, "default_hp_io_config_file", c.default_hp_io_config_file, where);
  c.unix_domain_socket = get(j, "unix_domain_socket", c.unix_domain_socket, where);
  c.tcp_address = get(j, "tcp_address", c.tcp_address, where);
  c.max_concurrent_rpcs = get(j, "max_concurrent_rpcs", c.max_concurrent_rpcs, where);
  c.min_hp_io_update_interval_seconds =
      get(j, "min_hp_io_update_interval_seconds", c.min_hp_io_update_interval_seconds, where);
  c.shutdown_grace_period = get(j, "shutdown_grace_period", c.shutdown_grace_period, where);
  c.read_status_pipe_name = get(j, "read_status_pipe_name", c.read_status_pipe_name, where);
  if (!c.unix_domain_socket.empty() && c.unix_socket_path().empty())
    throw SetupError(
        fmt::format("unix_domain_socket '{}' is not a unix: address; use "
                    "unix:///absolute/path",
                    c.unix_domain_socket));
  if (c.max_concurrent_rpcs < 1) throw SetupError("max_concurrent_rpcs must be at least 1");

  c.max_receive_message_bytes =
      get(j, "max_receive_message_bytes", c.max_receive_message_bytes, where);
  c.max_concurrent_uploads = get(j, "max_concurrent_uploads", c.max_concurrent_uploads, where);
  c.upload_idle_timeout = get(j, "upload_idle_timeout", c.upload_idle_timeout, where);
  c.max_queued_init_hp_io = get(j, "max_queued_init_hp_io", c.max_queued_init_hp_io, where);
  c.max_streams_per_connection =
      get(j, "max_streams_per_connection", c.max_streams_per_connection, where);
  c.grpc_max_threads = get(j, "grpc_max_threads", c.grpc_max_threads, where);
  if (j.contains("allowed_data_roots")) {
    const auto roots = get(j, "allowed_data_roots", std::vector<std::string>{}, where);
    c.allowed_data_roots.assign(roots.begin(), roots.end());
  }
  c.tls_cert_file = get(j, "tls_cert_file", c.tls_cert_file, where);
  c.tls_key_file = get(j, "tls_key_file", c.tls_key_file, where);
  c.tls_client_ca_file = get(j, "tls_client_ca_file", c.tls_client_ca_file, where);
  validate_limits(c);

  if (j.contains("acquisition_methods")) {
    const auto& am = j["acquisition_methods"];
    if (am.contains("uds")) {
      const auto& u = am["uds"];
      c.uds.enabled = get(u, "enabled", false, "acquisition_methods.uds");
      c.uds.data_products = products(u, "data_products", "acquisition_methods.uds");
      c.uds.socket_path_template =
          get(u, "socket_path_template", c.uds.socket_path_template, "acquisition_methods.uds");
      c.uds.read_timeout = get(u, "read_timeout", c.uds.read_timeout, "acquisition_methods.uds");
      if (c.uds.data_products.empty())
        c.uds.data_products = {pff::Product::img16, pff::Product::ph256};
    }
    if (am.contains("filesystem_poll"))
      c.filesystem_poll = get(am["filesystem_poll"], "enabled", false, "filesystem_poll");
    if (am.contains("filesystem_pipe"))
      c.filesystem_pipe = get(am["filesystem_pipe"], "enabled", false, "filesystem_pipe");
  }

  if (j.contains("simulate_daq_cfg")) {
    const auto& s = j["simulate_daq_cfg"];
    constexpr std::string_view sw = "simulate_daq_cfg";
    c.sim.simulation_mode = get(s, "simulation_mode", c.sim.simulation_mode, sw);
    c.sim.sim_module_ids = get(s, "sim_module_ids", c.sim.sim_module_ids, sw);
    if (s.contains("movie_type")) c.sim.movie_type = product(s["movie_type"], sw);
    if (s.contains("ph_type")) c.sim.ph_type = product(s["ph_type"], sw);
    if (pff::info(c.sim.movie_type).is_pulse_height() ||
        !pff::info(c.sim.ph_type).is_pulse_height())
      throw SetupError(
          "simulate_daq_cfg: movie_type must be img8 or img16 and ph_type ph256 or "
          "ph1024");
    c.sim.update_interval_seconds =
        get(s, "update_interval_seconds", c.sim.update_interval_seconds, sw);
    if (s.contains("source_data")) {
      c.sim.movie_pff_path = get(s["source_data"], "movie_pff_path", std::string{}, sw);
      c.sim.ph_pff_path = get(s["source_data"], "ph_pff_path", std::string{}, sw);
    }
    if (s.contains("filesystem_cfg")) {
      const auto& f = s["filesystem_cfg"];
      c.sim.sim_data_dir = get(f, "sim_data_dir", c.sim.sim_data_dir.string(), sw);
      c.sim.sim_run_dir_template = get(f, "sim_run_dir_template", c.sim.sim_run_dir_template, sw);
      c.sim.daq_active_file = get(f, "daq_active_file", c.sim.daq_active_file, sw);
    }
    if (s.contains("strategies")) {
      const auto& st = s["strategies"];
      for (const char* mode : {"filesystem_poll", "filesystem_pipe"}) {
        if (!st.contains(mode)) continue;
        c.sim.frames_per_pff = get(st[mode], "frames_per_pff", c.sim.frames_per_pff, sw);
        c.sim.frame_limit = get(st[mode], "frame_limit", c.sim.frame_limit, sw);
      }
      if (st.contains("uds"))
        c.sim.uds_data_products = products(st["uds"], "data_products", "strategies.uds");
    }
    if (c.sim.frames_per_pff < 1) c.sim.frames_per_pff = 100;
    if (c.sim.frame_limit < 0 || c.sim.frame_limit > 999) c.sim.frame_limit = 1000;
  }
  return c;
}

ServerConfig load_server_config(const std::filesystem::path& path) {
  return parse_server_config(read_json(path, "server configuration"));
}

json default_server_config_json() {
  return json::parse(R"({
  "init_from_default": true,
  "default_hp_io_config_file": "",
  "unix_domain_socket": "unix:///tmp/daq_data.sock",
  "max_concurrent_rpcs": 100,
  "min_hp_io_update_interval_seconds": 0.001,
  "shutdown_grace_period": 5,
  "read_status_pipe_name": "read_status_2",
  "max_receive_message_bytes": 67108864,
  "max_concurrent_uploads": 4,
  "upload_idle_timeout": 60,
  "max_queued_init_hp_io": 8,
  "max_streams_per_connection": 0,
  "grpc_max_threads": 16,
  "allowed_data_roots": ["/mnt/panoseti"],
  "tls_cert_file": "",
  "tls_key_file": "",
  "tls_client_ca_file": "",
  "acquisition_methods": {
    "uds": {"enabled": false, "data_products": ["img16", "ph256"],
            "socket_path_template": "/tmp/hashpipe_grpc.dp_{dp_name}.sock", "read_timeout": 60},
    "filesystem_poll": {"enabled": false},
    "filesystem_pipe": {"enabled": false}
  },
  "simulate_daq_cfg": {
    "simulation_mode": "rpc",
    "sim_module_ids": [224],
    "movie_type": "img16",
    "ph_type": "ph256",
    "update_interval_seconds": 0.1,
    "source_data": {"movie_pff_path": "", "ph_pff_path": ""},
    "filesystem_cfg": {
      "sim_data_dir": "/tmp/acheron_daq_sim",
      "sim_run_dir_template": "module_{module_id}/obs_SIMULATE",
      "daq_active_file": "module_{module_id}.daq-active"
    },
    "strategies": {
      "filesystem_poll": {"frames_per_pff": 100, "frame_limit": 1000},
      "filesystem_pipe": {"frames_per_pff": 100, "frame_limit": 1000},
      "uds": {"data_products": ["img16", "ph256"]},
      "rpc": {}
    }
  }
})");
}

json default_hp_io_config_json() {
  return json::parse(R"({
  "data_dir": "simulated_data_dir",
  "update_interval_seconds": 0.1,
  "force": true,
  "simulate_daq": true,
  "module_ids": [],
  "comments": "Track the simulated run directory"
})");
}

HpIoConfig parse_hp_io_config(const json& j) {
  constexpr std::string_view where = "hp_io configuration";
  HpIoConfig c;
  c.data_dir = get(j, "data_dir", std::string{}, where);
  c.update_interval_seconds = get(j, "update_interval_seconds", c.update_interval_seconds, where);
  c.force = get(j, "force", c.force, where);
  c.simulate_daq = get(j, "simulate_daq", c.simulate_daq, where);
  c.module_ids = get(j, "module_ids", c.module_ids, where);
  return c;
}

std::string read_pem_file(const std::filesystem::path& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw SetupError(fmt::format(
        "cannot read the TLS {} '{}' (no such file or no permission); pass a readable PEM file",
        what, path.string()));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.find("-----BEGIN ") == std::string::npos)
    throw SetupError(
        fmt::format("the TLS {} '{}' is not in PEM format (no -----BEGIN line); pass a PEM file",
                    what, path.string()));
  return text;
}

HpIoConfig load_hp_io_config(const std::filesystem::path& path) {
  return parse_hp_io_config(read_json(path, "hp_io configuration"));
}

}  // namespace acheron::daq
