// The F9T configuration a client sends with InitF9t (PANOSETI's
// f9t_config.json5: the global keys overlaid with one chip's entry),
// validated into a plain struct, and the configuration items it writes.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "acheron/wire/Ubx.hh"

namespace acheron::gnss {

// A configuration key and its value, ready for CFG-VALSET.
struct CfgSetting {
  const wire::ubx::CfgKey* key = nullptr;
  double value = 0;      // as given (numbers arrive as doubles)
  wire::ubx::Bytes raw;  // little-endian encoding for the key's type
};

struct LlhPosition {
  double lat_deg = 0, lon_deg = 0, height_m = 0;
  double acc_m = 0.05;
};

struct F9tConfig {
  std::string device;  // serial device path
  int baud = 115200;
  std::uint8_t apply_layers = wire::ubx::kLayerRam;  // CFG-VALSET layer bits
  std::string apply_layer_names = "RAM";             // for messages
  std::uint8_t verify_layer = wire::ubx::kPollRam;   // CFG-VALGET layer
  std::string verify_layer_name = "RAM";
  std::string uid;                   // expected unique id, 10 upper-case hex digits
  std::vector<CfgSetting> settings;  // cfg_key_settings, in order, duplicates resolved
  std::optional<LlhPosition> position;
};

// Validates a configuration. Throws Failure(invalid_argument) whose message
// starts with "INVALID_CONFIG: " for anything wrong, except the device
// checks, which use the upstream messages ("Device path not specified in
// config.", "Device path must be a string.").
F9tConfig parse_f9t_config(const nlohmann::json& config);

// CFG-VALSET layer bits from names (RAM 1, BBR 2, FLASH 4; any case). Throws
// Failure(invalid_argument) for an unknown name or an empty list.
std::uint8_t layer_mask(const std::vector<std::string>& names);
// CFG-VALGET layer number from a name (RAM 0, BBR 1, FLASH 2, DEFAULT 7).
std::uint8_t poll_layer(const std::string& name);

// The fixed-position (time mode) items for an LLH position, with floor
// division as Python's // so negative coordinates match PANOSETI's values.
std::vector<CfgSetting> tmode_settings(const LlhPosition& p);

// Every item to write: cfg_key_settings plus the time-mode items, split into
// the GNSS signal group (CFG_SIGNAL_*, written first: the receiver restarts
// its GNSS engine) and the rest, stably ordered CFG_TMODE_*, CFG_TP_*,
// CFG_MSGOUT_*, others.
struct SettingGroups {
  std::vector<CfgSetting> signal;
  std::vector<CfgSetting> other;
};
SettingGroups group_settings(const F9tConfig& config);

// A value for messages: integers without a fraction, reals in shortest form.
std::string format_value(wire::ubx::KeyType type, wire::ubx::ByteSpan raw);

// PANOSETI's default f9t_config.json5 (globals, 40 cfg keys, one chip entry).
const char* default_f9t_config_json5();
// The request config for one chip: the globals without f9t_chips, overlaid
// with chip `index` of f9t_chips, or the chip whose f9t_uid is `uid` if given.
// Throws SetupError if there is no such chip.
nlohmann::json chip_request_config(const nlohmann::json& file_config, int index,
                                   const std::string& uid = {});

// The text of a PEM file (TLS certificate, key or CA bundle) for the gRPC
// server and client. Throws SetupError naming `what` and the path if it
// cannot be read or holds no PEM block.
std::string read_pem_file(const std::string& path, const std::string& what);

}  // namespace acheron::gnss
