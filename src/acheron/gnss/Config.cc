#include "acheron/gnss/Config.hh"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <iterator>

#include "acheron/core/Error.hh"

namespace acheron::gnss {
namespace ubx = wire::ubx;
namespace {

[[noreturn]] void invalid(const std::string& what) {
  throw Failure(StatusCode::invalid_argument, "INVALID_CONFIG: " + what);
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

double number_field(const nlohmann::json& obj, const char* name, const std::string& where) {
  if (!obj.contains(name)) invalid(where + " has no '" + name + "' (a number is required)");
  const auto& v = obj.at(name);
  if (!v.is_number()) invalid(where + "." + name + " must be a number, not " + v.dump());
  const double d = v.get<double>();
  if (!std::isfinite(d)) invalid(where + "." + name + " must be finite");
  return d;
}

// Python-style floor division and remainder for a signed integer.
std::pair<std::int64_t, std::int64_t> floor_divmod(std::int64_t n, std::int64_t d) {
  std::int64_t q = n / d, r = n % d;
  if (r != 0 && ((r < 0) != (d < 0))) {
    --q;
    r += d;
  }
  return {q, r};
}

CfgSetting make_setting(const char* name, double value) {
  const ubx::CfgKey* key = ubx::find_key(name);
  ACHERON_ASSERT(key != nullptr);
  auto raw = ubx::encode_key_value(key->type, value);
  if (!raw)
    invalid(std::string(name) + " = " + nlohmann::json(value).dump() + ": " + raw.error().message);
  return {key, value, std::move(*raw)};
}

}  // namespace

std::uint8_t layer_mask(const std::vector<std::string>& names) {
  if (names.empty())
    invalid("apply_to_layers is empty (nothing would be written) list RAM, BBR and/or FLASH");
  std::uint8_t mask = 0;
  for (const auto& n : names) {
    const std::string u = upper(n);
    if (u == "RAM")
      mask |= ubx::kLayerRam;
    else if (u == "BBR")
      mask |= ubx::kLayerBbr;
    else if (u == "FLASH")
      mask |= ubx::kLayerFlash;
    else
      invalid("apply_to_layers has unknown layer '" + n + "' (use RAM, BBR or FLASH)");
  }
  return mask;
}

std::uint8_t poll_layer(const std::string& name) {
  const std::string u = upper(name);
  if (u == "RAM") return ubx::kPollRam;
  if (u == "BBR") return ubx::kPollBbr;
  if (u == "FLASH") return ubx::kPollFlash;
  if (u == "DEFAULT") return ubx::kPollDefault;
  invalid("verify_layer '" + name + "' is unknown (use RAM, BBR, FLASH or DEFAULT)");
}

std::vector<CfgSetting> tmode_settings(const LlhPosition& p) {
  const auto lat = floor_divmod(std::llround(p.lat_deg * 1e9), 100);
  const auto lon = floor_divmod(std::llround(p.lon_deg * 1e9), 100);
  const auto h = floor_divmod(std::llround(p.height_m * 1e4), 100);
  return {
      make_setting("CFG_TMODE_MODE", 2),      // fixed position
      make_setting("CFG_TMODE_POS_TYPE", 1),  // LLH
      make_setting("CFG_TMODE_FIXED_POS_ACC", static_cast<double>(std::llround(p.acc_m * 1e4))),
      make_setting("CFG_TMODE_LAT", static_cast<double>(lat.first)),
      make_setting("CFG_TMODE_LAT_HP", static_cast<double>(lat.second)),
      make_setting("CFG_TMODE_LON", static_cast<double>(lon.first)),
      make_setting("CFG_TMODE_LON_HP", static_cast<double>(lon.second)),
      make_setting("CFG_TMODE_HEIGHT", static_cast<double>(h.first)),
      make_setting("CFG_TMODE_HEIGHT_HP", static_cast<double>(h.second)),
  };
}

F9tConfig parse_f9t_config(const nlohmann::json& c) {
  if (!c.is_object()) invalid("f9t_config must be an object");
  F9tConfig out;
  // Device: upstream's messages, which PANOSETI's tests look for.
  if (!c.contains("device") || c.at("device").is_null() ||
      (c.at("device").is_string() && c.at("device").get<std::string>().empty())) {
    throw Failure(StatusCode::invalid_argument, "Device path not specified in config.");
  }
  if (!c.at("device").is_string())
    throw Failure(StatusCode::invalid_argument, "Device path must be a string.");
  out.device = c.at("device").get<std::string>();

  if (c.contains("baud")) {
    const double b = number_field(c, "baud", "f9t_config");
    static constexpr int rates[] = {9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600};
    if (std::find(std::begin(rates), std::end(rates), b) == std::end(rates)) {
      invalid(
          "baud " +
          (b == std::trunc(b) && std::abs(b) < 1e15 ? std::to_string(static_cast<long long>(b))
                                                    : nlohmann::json(b).dump()) +
          " is not a supported rate (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)");
    }
    out.baud = static_cast<int>(b);
  }

  if (c.contains("apply_to_layers")) {
    const auto& v = c.at("apply_to_layers");
    if (!v.is_array())
      invalid("apply_to_layers must be a list of layer names, e.g. [\"RAM\", \"BBR\"]");
    std::vector<std::string> names;
    for (const auto& n : v) {
      if (!n.is_string()) invalid("apply_to_layers entries must be strings, not " + n.dump());
      names.push_back(n.get<std::string>());
    }
    out.apply_layers = layer_mask(names);
    out.apply_layer_names.clear();
    for (const auto& n : names)
      out.apply_layer_names += (out.apply_layer_names.empty() ? "" : "+") + upper(n);
  }
  if (c.contains("verify_layer")) {
    const auto& v = c.at("verify_layer");
    if (!v.is_string()) invalid("verify_layer must be a string (RAM, BBR, FLASH or DEFAULT)");
    out.verify_layer = poll_layer(v.get<std::string>());
    out.verify_layer_name = upper(v.get<std::string>());
  }

  if (!c.contains("f9t_uid"))
    invalid("f9t_uid is missing (the receiver's unique id, 10 hex digits, e.g. \"DF03A241BC\")");
  if (!c.at("f9t_uid").is_string()) invalid("f9t_uid must be a string of 10 hex digits");
  out.uid = upper(c.at("f9t_uid").get<std::string>());
  if (out.uid.size() != 10 || !std::all_of(out.uid.begin(), out.uid.end(), [](char ch) {
        return std::isxdigit(static_cast<unsigned char>(ch));
      })) {
    invalid("f9t_uid '" + c.at("f9t_uid").get<std::string>() + "' is not 10 hex digits");
  }

  std::vector<CfgSetting> items;
  if (c.contains("cfg_key_settings")) {
    const auto& list = c.at("cfg_key_settings");
    if (!list.is_array())
      invalid("cfg_key_settings must be a list of {\"key\": NAME, \"value\": NUMBER}");
    for (std::size_t i = 0; i < list.size(); ++i) {
      const auto& e = list[i];
      const std::string where = "cfg_key_settings[" + std::to_string(i) + "]";
      if (!e.is_object() || !e.contains("key") || !e.contains("value")) {
        invalid(where + " must be an object with \"key\" and \"value\"");
      }
      if (!e.at("key").is_string()) invalid(where + ".key must be a string");
      const std::string name = e.at("key").get<std::string>();
      const ubx::CfgKey* key = ubx::find_key(name);
      if (!key) {
        // ublox.md §4 step 5: an unknown key name is INTERNAL, as upstream.
        throw Failure(StatusCode::internal, "Initialization failed: " + where +
                                                ": unknown configuration key '" + name +
                                                "' (not in the u-blox key table)");
      }
      double value = 0;
      const auto& v = e.at("value");
      if (v.is_number() || v.is_boolean()) {
        value = v.is_boolean() ? (v.get<bool>() ? 1 : 0) : v.get<double>();
      } else if (v.is_string()) {
        const std::string s = v.get<std::string>();
        try {
          std::size_t used = 0;
          const bool hexform = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
          value = hexform ? static_cast<double>(std::stoull(s.substr(2), &used, 16))
                          : std::stod(s, &used);
          if (used != (hexform ? s.size() - 2 : s.size())) throw std::invalid_argument(s);
        } catch (const std::exception&) {
          invalid(where + " (" + name + "): value '" + s +
                  "' is not a number or a \"0x...\" hex string");
        }
      } else {
        invalid(where + " (" + name + "): value must be a number or a \"0x...\" string, not " +
                v.dump());
      }
      auto raw = ubx::encode_key_value(key->type, value);
      if (!raw) invalid(where + " (" + std::string(key->name) + "): " + raw.error().message);
      items.push_back({key, value, std::move(*raw)});
    }
  }

  if (c.contains("position") && !c.at("position").is_null()) {
    const auto& p = c.at("position");
    if (!p.is_object())
      invalid("position must be an object {format, lat_deg, lon_deg, height_m, acc_m}");
    const std::string format = p.contains("format") && p.at("format").is_string()
                                   ? upper(p.at("format").get<std::string>())
                                   : "";
    if (format == "ECEF")
      invalid("position format ECEF is not implemented; give the position as LLH");
    if (format != "LLH") invalid("position.format must be \"LLH\"");
    LlhPosition llh;
    llh.lat_deg = number_field(p, "lat_deg", "position");
    llh.lon_deg = number_field(p, "lon_deg", "position");
    llh.height_m = number_field(p, "height_m", "position");
    if (p.contains("acc_m")) llh.acc_m = number_field(p, "acc_m", "position");
    if (std::abs(llh.lat_deg) > 90) invalid("position.lat_deg must lie in -90..90");
    if (std::abs(llh.lon_deg) > 180) invalid("position.lon_deg must lie in -180..180");
    if (std::abs(llh.height_m) > 1e5) invalid("position.height_m must lie in -100 km..100 km");
    if (llh.acc_m < 0 || llh.acc_m > 4e5) invalid("position.acc_m must lie in 0..400 km");
    out.position = llh;
    for (auto& s : tmode_settings(llh)) items.push_back(std::move(s));
  }

  // A key given twice keeps its first place and its last value.
  for (auto& item : items) {
    auto it = std::find_if(out.settings.begin(), out.settings.end(),
                           [&](const CfgSetting& s) { return s.key == item.key; });
    if (it != out.settings.end()) {
      *it = std::move(item);
    } else {
      out.settings.push_back(std::move(item));
    }
  }
  return out;
}

SettingGroups group_settings(const F9tConfig& config) {
  SettingGroups g;
  auto rank = [](std::string_view n) {
    if (n.starts_with("CFG_TMODE_")) return 0;
    if (n.starts_with("CFG_TP_")) return 1;
    if (n.starts_with("CFG_MSGOUT_")) return 2;
    return 3;
  };
  for (const auto& s : config.settings) {
    (s.key->name.starts_with("CFG_SIGNAL_") ? g.signal : g.other).push_back(s);
  }
  std::stable_sort(g.other.begin(), g.other.end(), [&](const CfgSetting& a, const CfgSetting& b) {
    return rank(a.key->name) < rank(b.key->name);
  });
  return g;
}

std::string format_value(ubx::KeyType type, ubx::ByteSpan raw) {
  auto v = ubx::decode_key_value_number(type, raw);
  if (!v) return "None";
  if (type == ubx::KeyType::R4 || type == ubx::KeyType::R8) return nlohmann::json(*v).dump();
  if (type == ubx::KeyType::I8) {
    std::int64_t s = 0;
    for (std::size_t i = 0; i < raw.size(); ++i) s |= std::int64_t(raw[i]) << (8 * i);
    return std::to_string(s);
  }
  if (type == ubx::KeyType::U8 || type == ubx::KeyType::X8) {
    std::uint64_t u = 0;
    for (std::size_t i = 0; i < raw.size(); ++i) u |= std::uint64_t(raw[i]) << (8 * i);
    return std::to_string(u);
  }
  return std::to_string(static_cast<std::int64_t>(*v));
}

nlohmann::json chip_request_config(const nlohmann::json& file, int index, const std::string& uid) {
  if (!file.is_object())
    throw SetupError(
        "F9T configuration is not an object (the file must hold one {...}) fix the file");
  nlohmann::json out = file;
  out.erase("f9t_chips");
  if (!file.contains("f9t_chips") || !file.at("f9t_chips").is_array() ||
      file.at("f9t_chips").empty()) {
    if (uid.empty() && index == 0) return out;  // already a single-chip config
    throw SetupError(
        "F9T configuration has no f9t_chips list (cannot pick a chip) add one or drop "
        "--chip/--uid");
  }
  const auto& chips = file.at("f9t_chips");
  const nlohmann::json* chip = nullptr;
  if (!uid.empty()) {
    for (const auto& c : chips) {
      // Not value("f9t_uid", ""): it throws a JSON type error for a chip
      // whose id is not a string; such a chip is not the one asked for.
      if (c.is_object() && c.contains("f9t_uid") && c["f9t_uid"].is_string() &&
          c["f9t_uid"].get<std::string>() == uid)
        chip = &c;
    }
    if (!chip)
      throw SetupError("no chip with f9t_uid " + uid +
                       " in f9t_chips (check the id) or use --chip N");
  } else {
    if (index < 0 || static_cast<std::size_t>(index) >= chips.size()) {
      throw SetupError("chip index " + std::to_string(index) + " is out of range (f9t_chips has " +
                       std::to_string(chips.size()) + " entries) pick 0.." +
                       std::to_string(chips.size() - 1));
    }
    chip = &chips[static_cast<std::size_t>(index)];
  }
  if (!chip->is_object()) throw SetupError("f9t_chips entry is not an object fix the file");
  for (const auto& [k, v] : chip->items()) out[k] = v;
  return out;
}

const char* default_f9t_config_json5() {
  return R"JSON5({
  // Settings for every F9T chip
  "baud": 115200,
  "apply_to_layers": ["RAM", "BBR"], // RAM, BBR (battery-backed RAM), FLASH
  "verify_layer": "RAM",
  "register_csv": "ZED-F9T_Registers.csv",

  "cfg_key_settings": [
    // Constellations and signals
    { "key": "CFG_SIGNAL_GPS_ENA", "value": 1 },
    { "key": "CFG_SIGNAL_GPS_L1CA_ENA", "value": 1 },
    { "key": "CFG_SIGNAL_GPS_L2C_ENA", "value": 1 },
    { "key": "CFG_SIGNAL_GPS_L5_ENA", "value": 0 },
    { "key": "CFG_SIGNAL_GAL_ENA", "value": 1 },
    { "key": "CFG_SIGNAL_GAL_E1_ENA", "value": 1 },
    { "key": "CFG_SIGNAL_GAL_E5B_ENA", "value": 1 },
    { "key": "CFG_SIGNAL_BDS_ENA", "value": 1 },
    { "key": "CFG_SIGNAL_BDS_B1_ENA", "value": 1 },
    { "key": "CFG_SIGNAL_BDS_B2_ENA", "value": 1 },
    { "key": "CFG_SIGNAL_BDS_B1C_ENA", "value": 0 },
    { "key": "CFG_SIGNAL_BDS_B2A_ENA", "value": 0 },
    { "key": "CFG_SIGNAL_SBAS_ENA", "value": 0 },
    { "key": "CFG_SIGNAL_QZSS_ENA", "value": 0 },
    { "key": "CFG_SIGNAL_QZSS_L1CA_ENA", "value": 0 },
    { "key": "CFG_SIGNAL_QZSS_L2C_ENA", "value": 0 },
    { "key": "CFG_SIGNAL_QZSS_L5_ENA", "value": 0 },
    { "key": "CFG_SIGNAL_NAVIC_ENA", "value": 0 },
    { "key": "CFG_SIGNAL_NAVIC_L5_ENA", "value": 0 },

    // Time pulse: frequency and duty-cycle (ratio) mode, antenna cable delay
    { "key": "CFG_TP_PULSE_DEF", "value": 1 },
    { "key": "CFG_TP_PULSE_LENGTH_DEF", "value": 0 },
    { "key": "CFG-TP-ANT_CABLEDELAY", "value": 10 },  // ns

    // TP1: 1 Hz, 0.01 % duty, aligned to the top of second
    { "key": "CFG_TP_TP1_ENA", "value": 1 },
    { "key": "CFG_TP_FREQ_TP1", "value": 1 },
    { "key": "CFG_TP_DUTY_TP1", "value": 0.01 },
    { "key": "CFG_TP_SYNC_GNSS_TP1", "value": 1 },
    { "key": "CFG_TP_USE_LOCKED_TP1", "value": 1 },
    { "key": "CFG_TP_ALIGN_TO_TOW_TP1", "value": 1 },
    { "key": "CFG_TP_TIMEGRID_TP1", "value": 0 },  // 0 UTC, 1 GPS
    { "key": "CFG_TP_FREQ_LOCK_TP1", "value": 1 },
    { "key": "CFG_TP_DUTY_LOCK_TP1", "value": 0.01 },

    // UBX-TIM-TP and UBX-NAV-TIMEUTC once per second on USB and UART1
    { "key": "CFG_MSGOUT_UBX_TIM_TP_USB", "value": 1 },
    { "key": "CFG_MSGOUT_UBX_TIM_TP_UART1", "value": 1 },
    { "key": "CFG_MSGOUT_UBX_NAV_TIMEUTC_USB", "value": 1 },
    { "key": "CFG_MSGOUT_UBX_NAV_TIMEUTC_UART1", "value": 1 },

    // TP2: 10 MHz, 50 % duty
    { "key": "CFG_TP_TP2_ENA", "value": 1 },
    { "key": "CFG_TP_FREQ_TP2", "value": 10000000 },
    { "key": "CFG_TP_DUTY_TP2", "value": 50.0 },
    { "key": "CFG_TP_SYNC_GNSS_TP2", "value": 1 },
    { "key": "CFG_TP_TIMEGRID_TP2", "value": 0 },
  ],

  // One entry per chip; a request sends the globals overlaid with one entry
  "f9t_chips": [
    {
      "f9t_uid": "DF03A241BC",
      "host": "localhost",
      "port": 50051,
      "device": "/dev/ttyACM1",
      "position": {
        "format": "LLH",
        "lat_deg": 37.4219999,   // degrees
        "lon_deg": -122.0840575, // degrees
        "height_m": 12.345,      // metres above the ellipsoid
        "acc_m": 0.02,           // accuracy of the fixed position, metres
      },
    },
  ],
}
)JSON5";
}

std::string read_pem_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw SetupError("cannot read the TLS " + what + " '" + path +
                     "' (no such file or no permission); pass a readable PEM file");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.find("-----BEGIN ") == std::string::npos)
    throw SetupError("the TLS " + what + " '" + path +
                     "' is not in PEM format (no -----BEGIN line); pass a PEM file");
  return text;
}

}  // namespace acheron::gnss
