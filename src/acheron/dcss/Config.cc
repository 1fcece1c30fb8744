#include "acheron/dcss/Config.hh"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "acheron/core/Config.hh"
#include "acheron/core/Error.hh"

namespace acheron::dcss {

namespace {

Duration secs(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

std::uint16_t port_of(const TomlTable& t, std::string_view key, std::uint16_t fallback,
                      bool allow_zero = false) {
  const auto v = t.get<std::int64_t>(key, fallback);
  if (v < (allow_zero ? 0 : 1) || v > 65535) {
    throw SetupError(t.where(key) + ": " + std::string(key) + " = " + std::to_string(v) +
                     " (not a TCP port) use 1-65535");
  }
  return static_cast<std::uint16_t>(v);
}

double positive(const TomlTable& t, std::string_view key, double fallback) {
  const double v = t.get<double>(key, fallback);
  if (!(v > 0) || !std::isfinite(v)) {
    throw SetupError(t.where(key) + ": " + std::string(key) + " must be a positive number");
  }
  return v;
}

// A count (bytes, connections): an integer of at least 1.
std::size_t count_of(const TomlTable& t, std::string_view key, std::size_t fallback) {
  const auto v = t.get<std::int64_t>(key, static_cast<std::int64_t>(fallback));
  if (v < 1) {
    throw SetupError(t.where(key) + ": " + std::string(key) + " = " + std::to_string(v) +
                     " (not a positive count) use 1 or more");
  }
  return static_cast<std::size_t>(v);
}

}  // namespace

DhsConfig default_dhs_config() {
  DhsConfig c;
  c.dhs.name = "loopDHS";
  return c;
}

DhsConfig parse_dhs_config(std::string_view toml, std::string source) {
  const auto root = TomlTable::parse_string(toml, source);
  root.check_keys({"dhs", "dcss", "loop", "motors", "ion_chambers"});
  DhsConfig c = default_dhs_config();
  c.source = source;
  if (auto t = root.find_table("dhs")) {
    t->check_keys({"name", "kind", "workers", "motor_tick_ms"});
    c.dhs.name = t->get<std::string>("name", c.dhs.name);
    c.kind = t->get<std::string>("kind", c.kind);
    if (c.kind != "loop" && c.kind != "sim") {
      throw SetupError(t->where("kind") + ": kind '" + c.kind + "' is unknown (use loop or sim)");
    }
    const auto workers = t->get<std::int64_t>("workers", 8);
    if (workers < 1 || workers > 256) throw SetupError(t->where("workers") + ": workers 1-256");
    c.dhs.workers = static_cast<std::size_t>(workers);
    c.dhs.motor_tick = secs(positive(*t, "motor_tick_ms", 100) / 1000.0);
  }
  if (c.dhs.name.empty() || c.dhs.name.size() > 39 ||
      c.dhs.name.find_first_of(" \t\n") != std::string::npos) {
    throw SetupError(root.where("dhs") + ": dhs.name '" + c.dhs.name +
                     "' must be 1-39 characters without spaces (a DCSS device name)");
  }
  if (auto t = root.find_table("dcss")) {
    t->check_keys({"host", "port", "protocol", "reconnect_s", "reconnect_min_s", "prompt_timeout_s",
                   "write_timeout_s", "max_text", "max_binary"});
    c.dcss.host = t->get<std::string>("host", c.dcss.host);
    c.dcss.port = port_of(*t, "port", c.dcss.port);
    std::optional<std::string> p;
    std::optional<std::int64_t> pn;
    if (t->contains("protocol")) {
      try {
        p = t->find<std::string>("protocol");
      } catch (const SetupError&) {
        pn = t->find<std::int64_t>("protocol");
      }
    }
    if (p && *p == "auto") {
      c.dcss.protocol = ProtocolChoice::automatic;
    } else if ((p && *p == "1") || (pn && *pn == 1)) {
      c.dcss.protocol = ProtocolChoice::v1;
    } else if ((p && *p == "2") || (pn && *pn == 2)) {
      c.dcss.protocol = ProtocolChoice::v2;
    } else if (p || pn) {
      throw SetupError(t->where("protocol") + ": protocol must be auto, 1 or 2");
    }
    c.dcss.reconnect_max = secs(positive(*t, "reconnect_s", 5.0));
    c.dcss.reconnect_min =
        std::min(c.dcss.reconnect_max, secs(positive(*t, "reconnect_min_s", 0.5)));
    c.dcss.prompt_timeout = secs(positive(*t, "prompt_timeout_s", 30));
    c.dcss.write_timeout = secs(positive(*t, "write_timeout_s", 30));
    c.dcss.limits.max_text = static_cast<std::size_t>(positive(*t, "max_text", 1 << 20));
    c.dcss.limits.max_binary = static_cast<std::size_t>(positive(*t, "max_binary", 16 << 20));
  }
  if (auto t = root.find_table("motors")) {
    for (const auto& name : t->keys()) {
      auto m = t->find_table(name);
      if (!m) throw SetupError(t->where(name) + ": motors." + name + " must be a table");
      m->check_keys({"speed", "hw_lower", "hw_upper"});
      MotorSettings s;
      s.speed = m->get<double>("speed", 0);
      s.hw_lower = m->get<double>("hw_lower", s.hw_lower);
      s.hw_upper = m->get<double>("hw_upper", s.hw_upper);
      c.dhs.motors[name] = s;
    }
  }
  if (auto t = root.find_table("ion_chambers")) {
    for (const auto& name : t->keys()) {
      auto m = t->find_table(name);
      if (!m) throw SetupError(t->where(name) + ": ion_chambers." + name + " must be a table");
      m->check_keys({"counts_per_s"});
      c.dhs.ion_chamber_rates[name] = m->get<double>("counts_per_s", c.dhs.default_counts_per_s);
    }
  }
  if (auto t = root.find_table("loop")) {
    t->check_keys({"osci_delta", "osci_time", "video_fps", "collect_grace_s", "frame_source",
                   "save_image_files", "debug_dir", "automl", "axis", "jpeg_receiver"});
    auto& l = c.loop;
    l.osci_delta = t->get<double>("osci_delta", l.osci_delta);
    l.osci_time = positive(*t, "osci_time", l.osci_time);
    l.video_fps = positive(*t, "video_fps", l.video_fps);
    l.collect_grace_s = positive(*t, "collect_grace_s", l.collect_grace_s);
    l.frame_source = t->get<std::string>("frame_source", l.frame_source);
    if (l.frame_source != "push" && l.frame_source != "mjpeg") {
      throw SetupError(t->where("frame_source") + ": frame_source '" + l.frame_source +
                       "' is unknown (use push or mjpeg)");
    }
    l.save_image_files = t->get<bool>("save_image_files", l.save_image_files);
    l.debug_dir = t->get<std::string>("debug_dir", l.debug_dir);
    if (auto a = t->find_table("automl")) {
      a->check_keys({"host", "port", "model", "threshold", "scan_n_results", "timeout_s",
                     "health_interval_s", "max_in_flight"});
      l.automl.host = a->get<std::string>("host", l.automl.host);
      l.automl.port = port_of(*a, "port", l.automl.port);
      l.automl.model = a->get<std::string>("model", l.automl.model);
      l.automl.threshold = a->get<double>("threshold", l.automl.threshold);
      l.automl.scan_n_results = static_cast<int>(a->get<std::int64_t>("scan_n_results", 5));
      if (l.automl.scan_n_results < 1) {
        throw SetupError(a->where("scan_n_results") + ": scan_n_results must be at least 1");
      }
      l.automl.timeout_s = positive(*a, "timeout_s", l.automl.timeout_s);
      l.automl.health_interval_s = positive(*a, "health_interval_s", l.automl.health_interval_s);
      l.automl.max_in_flight = static_cast<int>(positive(*a, "max_in_flight", 4));
    }
    if (auto a = t->find_table("axis")) {
      a->check_keys({"host", "port", "camera", "user", "password", "timeout_s"});
      l.axis.host = a->get<std::string>("host", l.axis.host);
      l.axis.port = port_of(*a, "port", l.axis.port);
      l.axis.camera = static_cast<int>(a->get<std::int64_t>("camera", l.axis.camera));
      l.axis.user = a->get<std::string>("user", "");
      l.axis.password = a->get<std::string>("password", "");
      l.axis.timeout_s = positive(*a, "timeout_s", l.axis.timeout_s);
    }
    if (auto a = t->find_table("jpeg_receiver")) {
      a->check_keys({"bind", "port", "max_bytes", "max_header_bytes", "max_connections",
                     "request_timeout_s", "token"});
      auto& r = l.jpeg_receiver;
      r.bind = a->get<std::string>("bind", r.bind);
      r.port = port_of(*a, "port", r.port, true);
      r.max_bytes = count_of(*a, "max_bytes", r.max_bytes);
      r.max_header_bytes = count_of(*a, "max_header_bytes", r.max_header_bytes);
      r.max_connections = count_of(*a, "max_connections", r.max_connections);
      r.request_timeout_s = positive(*a, "request_timeout_s", r.request_timeout_s);
      r.token = a->get<std::string>("token", r.token);
      if (auto p = r.problem()) {
        throw SetupError(a->where() + ": loop.jpeg_receiver: " + *p + " (fix the value)");
      }
    }
  }
  return c;
}

DhsConfig load_dhs_config(const std::filesystem::path& path) {
  std::string text;
  {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
      throw SetupError("cannot read DHS configuration '" + path.string() +
                       "' (missing or unreadable) check the path");
    }
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
  }
  return parse_dhs_config(text, path.string());
}

std::vector<std::filesystem::path> beamline_config_dirs() {
  std::vector<std::filesystem::path> dirs;
  if (const char* env = std::getenv("ACHERON_DHS_CONFIG_DIR"); env && *env) dirs.emplace_back(env);
  dirs.emplace_back("config");
  dirs.emplace_back("/etc/acheron/dhs");
  return dirs;
}

std::filesystem::path find_beamline_config(const std::string& beamline) {
  std::string tried;
  for (const auto& dir : beamline_config_dirs()) {
    const auto p = dir / (beamline + ".toml");
    if (std::filesystem::exists(p)) return p;
    tried += (tried.empty() ? "" : ", ") + p.string();
  }
  throw SetupError("no configuration for beamline '" + beamline + "' (tried " + tried +
                   ") write one (acheron dhs default > " + beamline +
                   ".toml) or set ACHERON_DHS_CONFIG_DIR");
}

std::string default_dhs_config_toml() {
  return R"(# Acheron DHS configuration (docs/dcss.md). Every key is optional.
[dhs]
name = "loopDHS"          # the type-3 row in the DCSS database
kind = "loop"             # loop: the loop DHS; sim: simulated devices only
workers = 8               # threads running operation handlers
motor_tick_ms = 100       # simulated motor update period

[dcss]
host = "127.0.0.1"
port = 14242              # dcss.hardwarePort
protocol = "auto"         # auto | 1 | 2
reconnect_s = 5.0         # longest wait between reconnect attempts
reconnect_min_s = 0.5     # first wait after a disconnect (doubles up to reconnect_s)

[loop]
osci_delta = 180.0        # degrees of gonio_phi
osci_time = 3.0           # s; expected frames = osci_time * video_fps
video_fps = 30.0
frame_source = "push"     # push: the Axis server POSTs JPEGs; mjpeg: read its MJPEG stream
save_image_files = false
debug_dir = "loop-dhs-debug"

[loop.automl]
host = "127.0.0.1"
port = 5000
threshold = 0.11
scan_n_results = 5

[loop.axis]
host = "127.0.0.1"
port = 8888
camera = 1

[loop.jpeg_receiver]
bind = "127.0.0.1"        # loopback only; this host's address on the camera network if the Axis server is elsewhere
port = 7171
request_timeout_s = 5.0   # a request (headers and body) must arrive within this
max_connections = 32      # more at once are answered 503 and closed
# token = "..."           # then POST to http://HOST:7171/jpeg?token=... (letters, digits, -._~)

# Simulated motors and ion chambers (optional):
# [motors.gonio_phi]
# speed = 90.0            # units/s (default: DCSS speed / scaleFactor)
# hw_upper = 1000.0       # simulated limit switch
# [ion_chambers.i0]
# counts_per_s = 10000
)";
}

}  // namespace acheron::dcss
