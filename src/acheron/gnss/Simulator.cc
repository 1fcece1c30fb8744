#include "acheron/gnss/Simulator.hh"

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "acheron/core/Error.hh"

namespace acheron::gnss {
namespace ubx = wire::ubx;
namespace {

constexpr std::int64_t kGpsEpochUnix = 315964800;  // 1980-01-06T00:00:00Z
constexpr std::int64_t kLeapSeconds = 18;          // GPS - UTC since 2017
constexpr std::int64_t kWeekSeconds = 604800;

std::uint32_t key_id(const char* name) {
  const auto* k = ubx::find_key(name);
  ACHERON_ASSERT(k != nullptr);
  return k->id;
}

bool base64_decode(std::string_view text, ubx::Bytes& out) {
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t pad = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else if (c == '=') {
      ++pad;
      continue;
    } else {
      return false;
    }
    if (pad) return false;  // data after padding
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>(acc >> bits));
    }
  }
  return pad <= 2;
}

}  // namespace

std::vector<ubx::Bytes> load_capture_jsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw SetupError("cannot read " + path + " (missing or unreadable) give a capture .jsonl file");
  std::vector<ubx::Bytes> frames;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw SetupError(where + " is not JSON (" + e.what() + ") one object per line is expected");
    }
    if (!j.is_object() || !j.contains("payload_b64") || !j["payload_b64"].is_string()) {
      throw SetupError(
          where + " has no \"payload_b64\" string (the capture format is {identity, payload_b64})");
    }
    ubx::Bytes frame;
    if (!base64_decode(j["payload_b64"].get<std::string>(), frame)) {
      throw SetupError(where + ": payload_b64 is not base64");
    }
    auto f = ubx::Frame::from_bytes(frame);
    if (!f) throw SetupError(where + ": not a UBX frame (" + f.error().message + ")");
    frames.push_back(std::move(frame));
  }
  return frames;
}

SimulatedF9t::SimulatedF9t(SimOptions options)
    : options_(std::move(options)), faults_(options_.faults) {
  if (!ubx::SecUniqid::from_hex(options_.unique_id).ok()) {
    throw SetupError("simulated unique id '" + options_.unique_id +
                     "' is not 10 hex digits (e.g. DF03A241BC) fix --uid");
  }
  if (options_.period <= Duration::zero()) throw SetupError("simulator period must be positive");
  rng_ = options_.seed * 0x9E3779B97F4A7C15ull + 1;
  master_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master_ < 0 || ::grantpt(master_) != 0 || ::unlockpt(master_) != 0) {
    const std::string why = std::strerror(errno);
    close_fds();
    throw SetupError("cannot create a pseudo-terminal (" + why + ") check /dev/ptmx and devpts");
  }
  char name[128];
  if (::ptsname_r(master_, name, sizeof name) != 0) {
    close_fds();
    throw SetupError("cannot name the pseudo-terminal slave");
  }
  pty_path_ = name;
  // Keep a slave descriptor open: the line stays up while clients open and
  // close the port, and the slave can be put in raw mode before they do.
  slave_ = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave_ < 0) {
    close_fds();
    throw SetupError("cannot open the pseudo-terminal slave " + pty_path_);
  }
  termios tio{};
  ::tcgetattr(slave_, &tio);
  ::cfmakeraw(&tio);
  ::tcsetattr(slave_, TCSANOW, &tio);
  ::fcntl(master_, F_SETFL, ::fcntl(master_, F_GETFL) | O_NONBLOCK);
  device_path_ = pty_path_;
  if (!options_.link.empty()) {
    std::error_code ec;
    if (std::filesystem::is_symlink(options_.link, ec)) std::filesystem::remove(options_.link, ec);
    std::filesystem::create_symlink(pty_path_, options_.link, ec);
    if (ec) {
      close_fds();
      throw SetupError("cannot create the link " + options_.link + " (" + ec.message() +
                       ") pick another path");
    }
    device_path_ = options_.link;
  }
  utc_sec_ = wall_time_ns() / 1'000'000'000;
  nano_ = static_cast<std::int32_t>(rng_ % 1'000'000) - 500'000;
  running_ = true;
  thread_ = std::thread([this] { run(); });
}

SimulatedF9t::~SimulatedF9t() {
  stop();
}

void SimulatedF9t::close_fds() {
  if (master_ >= 0) ::close(master_);
  if (slave_ >= 0) ::close(slave_);
  master_ = slave_ = -1;
}

void SimulatedF9t::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  close_fds();
  if (!options_.link.empty()) {
    std::error_code ec;
    if (std::filesystem::is_symlink(options_.link, ec)) std::filesystem::remove(options_.link, ec);
  }
  running_ = false;
}

void SimulatedF9t::unplug() {
  stop();
}

void SimulatedF9t::set_faults(const SimFaults& faults) {
  std::lock_guard lock(mutex_);
  faults_ = faults;
}

std::optional<ubx::Bytes> SimulatedF9t::stored(std::uint8_t layer_bit, std::uint32_t key) const {
  std::lock_guard lock(mutex_);
  const auto& m = layer_bit == ubx::kLayerRam ? ram_ : layer_bit == ubx::kLayerBbr ? bbr_ : flash_;
  if (auto it = m.find(key); it != m.end()) return it->second;
  return std::nullopt;
}

SimStats SimulatedF9t::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void SimulatedF9t::send(const ubx::Bytes& frame) {
  std::size_t off = 0;
  while (off < frame.size()) {
    const ssize_t w = ::write(master_, frame.data() + off, frame.size() - off);
    if (w <= 0) return;  // nobody reads and the line buffer is full: drop, as a UART would
    off += static_cast<std::size_t>(w);
  }
}

void SimulatedF9t::run() {
  ubx::StreamParser parser;
  auto next_tick = Clock::now() + options_.period;
  if (options_.period == std::chrono::seconds(1)) {
    // Real-time cadence: tick on the wall-clock second.
    next_tick =
        Clock::now() + std::chrono::nanoseconds(1'000'000'000 - wall_time_ns() % 1'000'000'000);
    utc_sec_ = wall_time_ns() / 1'000'000'000 + 1;
  }
  std::uint8_t buf[4096];
  while (!stop_) {
    const auto now = Clock::now();
    if (now >= next_tick) {
      emit_periodic();
      next_tick += options_.period;
      if (next_tick < now) next_tick = now + options_.period;  // fell behind: do not burst
      continue;
    }
    const auto wait = std::min<Duration>(next_tick - now, std::chrono::milliseconds(50));
    pollfd p{master_, POLLIN, 0};
    const int r = ::poll(
        &p, 1,
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count()) + 1);
    if (r <= 0 || !(p.revents & POLLIN)) continue;
    const ssize_t n = ::read(master_, buf, sizeof buf);
    if (n <= 0) continue;
    parser.feed(ubx::ByteSpan(buf, static_cast<std::size_t>(n)));
    while (auto f = parser.next()) handle(*f);
  }
}

void SimulatedF9t::handle(const ubx::Frame& frame) {
  {
    std::lock_guard lock(mutex_);
    if (faults_.silent) return;
  }
  const auto id = frame.message_id();
  if (id == ubx::kCfgValset) return handle_valset(frame);
  if (id == ubx::kCfgValget) return handle_valget(frame);
  if (!frame.payload().empty()) return;  // not a poll: ignored
  std::lock_guard lock(mutex_);
  if (id == ubx::kMonVer) {
    ++stats_.polls;
    ubx::MonVer m{"ROM SPG 5.10 (7b202e)",
                  "00190000",
                  {"ROM BASE 0x118B2060", "FWVER=TIM 2.20", "PROTVER=29.20",
                   "MOD=" + (faults_.wrong_model ? std::string("ZED-F9P") : options_.model)}};
    send(ubx::encode_mon_ver(m));
  } else if (id == ubx::kSecUniqid) {
    ++stats_.polls;
    send(ubx::encode_sec_uniqid(ubx::SecUniqid::from_hex(options_.unique_id).value()));
  }
}

void SimulatedF9t::handle_valset(const ubx::Frame& frame) {
  std::lock_guard lock(mutex_);
  ++stats_.valset;
  auto nak = [&] {
    ++stats_.naks;
    send(ubx::encode_ack({false, ubx::kCfgValset.cls, ubx::kCfgValset.id}));
  };
  auto m = ubx::decode_cfg_valset(frame.payload());
  if (!m || (m->layers & 0x07) == 0 || m->items.size() > ubx::kMaxCfgItems || m->version > 1 ||
      faults_.nak_all) {
    return nak();
  }
  for (const auto& item : m->items) {
    if (options_.strict_keys && !ubx::find_key(item.key)) return nak();
    if (faults_.nak_keys.count(item.key)) return nak();
  }
  auto apply = [&](const std::vector<ubx::CfgItem>& items, std::uint8_t layers) {
    for (const auto& item : items) {
      if (layers & ubx::kLayerRam) ram_[item.key] = item.value;
      if (layers & ubx::kLayerBbr) bbr_[item.key] = item.value;
      if (layers & ubx::kLayerFlash) flash_[item.key] = item.value;
    }
  };
  const std::uint8_t txn = m->version == 1 ? m->transaction : 0;
  switch (txn) {
    case 0:
      apply(m->items, m->layers);
      break;
    case 1:  // begin (a new begin discards an open transaction)
      txn_items_ = m->items;
      txn_layers_ = m->layers;
      txn_open_ = true;
      break;
    case 2:
      if (!txn_open_) return nak();
      txn_items_.insert(txn_items_.end(), m->items.begin(), m->items.end());
      break;
    case 3:
      if (!txn_open_) return nak();
      txn_items_.insert(txn_items_.end(), m->items.begin(), m->items.end());
      apply(txn_items_, txn_layers_);
      txn_items_.clear();
      txn_open_ = false;
      break;
    default:
      return nak();
  }
  ++stats_.acks;
  send(ubx::encode_ack({true, ubx::kCfgValset.cls, ubx::kCfgValset.id}));
}

std::optional<ubx::Bytes> SimulatedF9t::lookup(std::uint8_t layer, std::uint32_t key) const {
  const ubx::CfgKey* k = ubx::find_key(key);
  const std::size_t size = ubx::key_value_size(key);
  auto stored_in = [&](const std::map<std::uint32_t, ubx::Bytes>& m) -> std::optional<ubx::Bytes> {
    if (auto it = m.find(key); it != m.end()) return it->second;
    return std::nullopt;
  };
  auto default_value = [&]() -> std::optional<ubx::Bytes> {
    if (!k && options_.strict_keys) return std::nullopt;
    if (size == 0) return std::nullopt;
    return ubx::Bytes(size, 0);
  };
  switch (layer) {
    case ubx::kPollRam:
      if (auto v = stored_in(ram_)) return v;
      return default_value();
    case ubx::kPollBbr:
      return stored_in(bbr_);
    case ubx::kPollFlash:
      return stored_in(flash_);
    case ubx::kPollDefault:
      return default_value();
    default:
      return std::nullopt;
  }
}

void SimulatedF9t::handle_valget(const ubx::Frame& frame) {
  std::lock_guard lock(mutex_);
  ++stats_.valget;
  auto nak = [&] {
    ++stats_.naks;
    send(ubx::encode_ack({false, ubx::kCfgValget.cls, ubx::kCfgValget.id}));
  };
  auto poll = ubx::decode_cfg_valget_poll(frame.payload());
  if (!poll || poll->version != 0 || poll->keys.size() > ubx::kMaxCfgItems || poll->keys.empty())
    return nak();
  const std::uint8_t layer = poll->layer;
  if (layer != ubx::kPollRam && layer != ubx::kPollBbr && layer != ubx::kPollFlash &&
      layer != ubx::kPollDefault) {
    return nak();
  }
  ubx::CfgValgetReply reply;
  reply.layer = layer;
  reply.position = poll->position;
  std::size_t index = 0;
  for (auto key : poll->keys) {
    if (options_.strict_keys && !ubx::find_key(key) && !ram_.count(key)) return nak();
    auto v = lookup(layer, key);
    if (!v) {
      if (layer == ubx::kPollRam || layer == ubx::kPollDefault) return nak();
      continue;  // not stored in that layer: left out of the reply
    }
    if (index++ < poll->position) continue;
    if (faults_.mismatch_keys.count(key) && !v->empty()) (*v)[0] ^= 1;
    reply.items.push_back({key, std::move(*v)});
  }
  send(ubx::encode_cfg_valget_reply(reply));
  ++stats_.acks;
  send(ubx::encode_ack({true, ubx::kCfgValget.cls, ubx::kCfgValget.id}));
}

bool SimulatedF9t::output_enabled(const char* usb_key, const char* uart_key) const {
  for (const char* name : {usb_key, uart_key}) {
    if (auto it = ram_.find(key_id(name));
        it != ram_.end() && !it->second.empty() && it->second[0] != 0) {
      return true;
    }
  }
  return false;
}

void SimulatedF9t::emit_periodic() {
  std::lock_guard lock(mutex_);
  const std::int64_t epoch = utc_sec_++;
  // xorshift: reproducible noise for qErr, tAcc and the clock offset.
  auto rnd = [this] {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
  };
  nano_ += static_cast<std::int32_t>(rnd() % 4001) - 2000;
  nano_ = std::clamp(nano_, -999'999, 999'999);
  if (faults_.silent) return;
  const bool tim = output_enabled("CFG_MSGOUT_UBX_TIM_TP_USB", "CFG_MSGOUT_UBX_TIM_TP_UART1");
  const bool nav =
      output_enabled("CFG_MSGOUT_UBX_NAV_TIMEUTC_USB", "CFG_MSGOUT_UBX_NAV_TIMEUTC_UART1");
  if (!tim && !nav) return;
  std::vector<ubx::Bytes> frames;
  if (!options_.replay.empty()) {
    while (replay_pos_ < options_.replay.size()) {
      frames.push_back(options_.replay[replay_pos_++]);
      if (frames.back().size() > 3 && frames.back()[2] == ubx::kNavTimeUtc.cls &&
          frames.back()[3] == ubx::kNavTimeUtc.id) {
        break;
      }
    }
  } else {
    if (tim) {
      // The next pulse, in the UTC time base.
      const std::int64_t next = epoch + 1 - kGpsEpochUnix;
      ubx::TimTp tp;
      tp.week = static_cast<std::uint16_t>(next / kWeekSeconds);
      tp.tow_ms = static_cast<std::uint32_t>((next % kWeekSeconds) * 1000);
      tp.q_err = static_cast<std::int32_t>(rnd() % 8001) - 4000;
      tp.flags = 0x0B;     // UTC time base, UTC available, RAIM active
      tp.ref_info = 0x3F;  // time reference unknown, UTC(USNO)
      frames.push_back(ubx::encode_tim_tp(tp));
    }
    if (nav) {
      const std::int64_t gps = epoch + kLeapSeconds - kGpsEpochUnix;
      const std::time_t t = static_cast<std::time_t>(epoch);
      std::tm tm{};
      ::gmtime_r(&t, &tm);
      ubx::NavTimeUtc m;
      m.itow = static_cast<std::uint32_t>((gps % kWeekSeconds) * 1000);
      m.t_acc = static_cast<std::uint32_t>(55 + rnd() % 40);
      m.nano = nano_;
      m.year = static_cast<std::uint16_t>(tm.tm_year + 1900);
      m.month = static_cast<std::uint8_t>(tm.tm_mon + 1);
      m.day = static_cast<std::uint8_t>(tm.tm_mday);
      m.hour = static_cast<std::uint8_t>(tm.tm_hour);
      m.min = static_cast<std::uint8_t>(tm.tm_min);
      m.sec = static_cast<std::uint8_t>(tm.tm_sec);
      m.valid = 0x37;  // TOW, week and UTC valid; UTC(USNO)
      frames.push_back(ubx::encode_nav_timeutc(m));
    }
  }
  if (frames.empty()) return;
  ++stats_.periodic;
  if (faults_.nmea) {
    const std::string s = "$GNZDA,000000.00,01,01,2025,00,00*7F\r\n";
    send(ubx::Bytes(s.begin(), s.end()));
  }
  for (auto& f : frames) {
    if (faults_.corrupt_checksums) f.back() ^= 0xFF;
    send(f);
  }
}

}  // namespace acheron::gnss
