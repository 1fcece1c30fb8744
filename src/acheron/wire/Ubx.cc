#include "acheron/wire/Ubx.hh"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace acheron::wire::ubx {
namespace {

template <class T>
T read_le(ByteSpan p, std::size_t offset) {
  using U = std::make_unsigned_t<T>;
  U v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<U>(U(p[offset + i]) << (8 * i));
  return static_cast<T>(v);
}

template <class T>
void write_le(Bytes& out, T value) {
  using U = std::make_unsigned_t<T>;
  const U v = static_cast<U>(value);
  for (std::size_t i = 0; i < sizeof(T); ++i)
    out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

Result<int> check_length(std::string_view what, ByteSpan payload, std::size_t want) {
  if (payload.size() != want) {
    return Result<int>::failure(StatusCode::invalid_argument, std::string(what) + " payload has " +
                                                                  std::to_string(payload.size()) +
                                                                  " bytes, expected " +
                                                                  std::to_string(want));
  }
  return 0;
}

std::string hex_of(ByteSpan bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (auto b : bytes) {
    s.push_back(digits[b >> 4]);
    s.push_back(digits[b & 15]);
  }
  return s;
}

// A fixed-size NUL-padded character field as text (NULs at the end stripped).
std::string char_field(ByteSpan p) {
  std::size_t n = p.size();
  while (n > 0 && p[n - 1] == 0) --n;
  return std::string(reinterpret_cast<const char*>(p.data()), n);
}

void put_char_field(Bytes& out, std::string_view s, std::size_t width) {
  const std::size_t n = std::min(s.size(), width);
  out.insert(out.end(), s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
  out.insert(out.end(), width - n, 0);
}

}  // namespace

std::array<std::uint8_t, 2> checksum(ByteSpan content) {
  std::uint32_t a = 0, b = 0;
  for (auto byte : content) {
    a += byte;
    b += a;
  }
  return {static_cast<std::uint8_t>(a), static_cast<std::uint8_t>(b)};
}

Bytes encode_frame(MessageId msg, ByteSpan payload) {
  Bytes out;
  out.reserve(payload.size() + kOverhead);
  out.push_back(kSync1);
  out.push_back(kSync2);
  out.push_back(msg.cls);
  out.push_back(msg.id);
  write_le<std::uint16_t>(out, static_cast<std::uint16_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
  const auto ck = checksum(ByteSpan(out).subspan(2));
  out.push_back(ck[0]);
  out.push_back(ck[1]);
  return out;
}

Result<Frame> Frame::from_bytes(ByteSpan bytes) {
  auto fail = [](std::string m) {
    return Result<Frame>::failure(StatusCode::invalid_argument, std::move(m));
  };
  if (bytes.size() < kOverhead) return fail("UBX frame shorter than 8 bytes");
  if (bytes[0] != kSync1 || bytes[1] != kSync2) return fail("UBX frame does not start with B5 62");
  const std::size_t len = read_le<std::uint16_t>(bytes, 4);
  if (bytes.size() != len + kOverhead) {
    return fail("UBX frame length field says " + std::to_string(len) +
                " payload bytes but the frame has " + std::to_string(bytes.size() - kOverhead));
  }
  const auto ck = checksum(bytes.subspan(2, len + 4));
  if (ck[0] != bytes[len + 6] || ck[1] != bytes[len + 7])
    return fail("UBX frame checksum mismatch");
  return Frame(Bytes(bytes.begin(), bytes.end()));
}

StreamParser::StreamParser(std::size_t max_payload)
    : max_payload_(std::min<std::size_t>(max_payload, 0xFFFF)) {}

void StreamParser::feed(ByteSpan bytes) {
  // Drop what was consumed before growing the buffer.
  if (pos_ > 0 &&
      (pos_ >= buffer_.size() / 2 || buffer_.size() + bytes.size() > buffer_.capacity())) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

std::optional<Frame> StreamParser::next() {
  for (;;) {
    const std::size_t avail = buffer_.size() - pos_;
    if (avail == 0) return std::nullopt;
    const std::uint8_t* base = buffer_.data() + pos_;
    // Find the next sync pair.
    const auto* sync = static_cast<const std::uint8_t*>(std::memchr(base, kSync1, avail));
    if (!sync) {
      stats_.skipped_bytes += avail;
      pos_ = buffer_.size();
      return std::nullopt;
    }
    const std::size_t skip = static_cast<std::size_t>(sync - base);
    stats_.skipped_bytes += skip;
    pos_ += skip;
    const std::size_t left = avail - skip;
    if (left < 2) return std::nullopt;  // a lone B5 at the end: wait
    if (buffer_[pos_ + 1] != kSync2) {
      ++stats_.skipped_bytes;
      ++pos_;
      continue;
    }
    if (left < kHeaderSize) return std::nullopt;
    const std::size_t len = read_le<std::uint16_t>(ByteSpan(buffer_), pos_ + 4);
    if (len > max_payload_) {
      ++stats_.oversize;
      ++stats_.skipped_bytes;
      ++pos_;
      continue;
    }
    if (left < len + kOverhead) return std::nullopt;  // incomplete: wait for more
    const ByteSpan frame(buffer_.data() + pos_, len + kOverhead);
    const auto ck = checksum(frame.subspan(2, len + 4));
    if (ck[0] != frame[len + 6] || ck[1] != frame[len + 7]) {
      ++stats_.bad_checksum;
      ++stats_.skipped_bytes;
      ++pos_;
      continue;
    }
    pos_ += frame.size();
    ++stats_.frames;
    return Frame(Bytes(frame.begin(), frame.end()));
  }
}

void StreamParser::reset() {
  buffer_.clear();
  pos_ = 0;
}

std::string identity(MessageId msg) {
  const auto* names = detail::kMessageNames;
  const auto* end = names + detail::kMessageNameCount;
  const auto it = std::lower_bound(names, end, msg, [](const MessageName& m, MessageId k) {
    return m.cls != k.cls ? m.cls < k.cls : m.id < k.id;
  });
  if (it != end && it->cls == msg.cls && it->id == msg.id) return std::string(it->name);
  std::string cls = "UNKNOWN";
  for (std::size_t i = 0; i < detail::kClassNameCount; ++i) {
    if (detail::kClassNames[i].cls == msg.cls) cls = std::string(detail::kClassNames[i].name);
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out = cls + "-";
  for (std::uint8_t b : {msg.cls, msg.id}) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out + "-NOMINAL";
}

// ---------------------------------------------------------------------------

std::size_t key_value_size(std::uint32_t key_id) {
  switch ((key_id >> 28) & 0x7) {
    case 1:
    case 2:
      return 1;
    case 3:
      return 2;
    case 4:
      return 4;
    case 5:
      return 8;
    default:
      return 0;
  }
}

std::size_t type_size(KeyType type) {
  switch (type) {
    case KeyType::L:
    case KeyType::U1:
    case KeyType::I1:
    case KeyType::E1:
    case KeyType::X1:
      return 1;
    case KeyType::U2:
    case KeyType::I2:
    case KeyType::E2:
    case KeyType::X2:
      return 2;
    case KeyType::U4:
    case KeyType::I4:
    case KeyType::E4:
    case KeyType::X4:
    case KeyType::R4:
      return 4;
    case KeyType::U8:
    case KeyType::I8:
    case KeyType::X8:
    case KeyType::R8:
      return 8;
  }
  return 0;
}

std::string_view type_name(KeyType type) {
  static constexpr std::string_view names[] = {"L",  "U1", "U2", "U4", "U8", "I1",
                                               "I2", "I4", "I8", "E1", "E2", "E4",
                                               "X1", "X2", "X4", "X8", "R4", "R8"};
  return names[static_cast<int>(type)];
}

std::string normalise_key_name(std::string_view name) {
  std::string s(name);
  for (auto& c : s)
    c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

const CfgKey* find_key(std::string_view name) {
  const std::string n = normalise_key_name(name);
  const auto* begin = detail::kCfgKeys;
  const auto* end = begin + detail::kCfgKeyCount;
  const auto it = std::lower_bound(begin, end, std::string_view(n),
                                   [](const CfgKey& k, std::string_view v) { return k.name < v; });
  return it != end && it->name == n ? it : nullptr;
}

const CfgKey* find_key(std::uint32_t id) {
  for (std::size_t i = 0; i < detail::kCfgKeyCount; ++i) {
    if (detail::kCfgKeys[i].id == id) return &detail::kCfgKeys[i];
  }
  return nullptr;
}

std::span<const CfgKey> all_keys() {
  return {detail::kCfgKeys, detail::kCfgKeyCount};
}

namespace {
template <class T>
bool fits(double v) {
  // Truncated value must lie in T's range. Bounds as doubles: the maximum of
  // a 64-bit type rounds up, so compare with < for the upper bound.
  const double lo = static_cast<double>(std::numeric_limits<T>::min());
  const double hi = std::ldexp(1.0, std::numeric_limits<T>::digits);  // max + 1
  return v >= lo && v < hi;
}
}  // namespace

Result<Bytes> encode_key_value(KeyType type, double value) {
  auto fail = [&](std::string why) {
    return Result<Bytes>::failure(StatusCode::invalid_argument, std::move(why));
  };
  if (!std::isfinite(value)) return fail("value is not a finite number");
  Bytes out;
  if (type == KeyType::R4) {
    write_le<std::uint32_t>(out, std::bit_cast<std::uint32_t>(static_cast<float>(value)));
    return out;
  }
  if (type == KeyType::R8) {
    write_le<std::uint64_t>(out, std::bit_cast<std::uint64_t>(value));
    return out;
  }
  const double t = std::trunc(value);
  auto range = [&](std::string_view r) {
    return fail("value " + nlohmann::json(value).dump() + " is out of range for type " +
                std::string(type_name(type)) + " (" + std::string(r) + ")");
  };
  switch (type) {
    case KeyType::L:
      if (t != 0 && t != 1) return range("0 or 1");
      out.push_back(static_cast<std::uint8_t>(t));
      break;
    case KeyType::U1:
    case KeyType::E1:
    case KeyType::X1:
      if (!fits<std::uint8_t>(t)) return range("0..255");
      write_le<std::uint8_t>(out, static_cast<std::uint8_t>(t));
      break;
    case KeyType::U2:
    case KeyType::E2:
    case KeyType::X2:
      if (!fits<std::uint16_t>(t)) return range("0..65535");
      write_le<std::uint16_t>(out, static_cast<std::uint16_t>(t));
      break;
    case KeyType::U4:
    case KeyType::E4:
    case KeyType::X4:
      if (!fits<std::uint32_t>(t)) return range("0..4294967295");
      write_le<std::uint32_t>(out, static_cast<std::uint32_t>(t));
      break;
    case KeyType::U8:
    case KeyType::X8:
      if (!fits<std::uint64_t>(t)) return range("0..2^64-1");
      write_le<std::uint64_t>(out, static_cast<std::uint64_t>(t));
      break;
    case KeyType::I1:
      if (!fits<std::int8_t>(t)) return range("-128..127");
      write_le<std::int8_t>(out, static_cast<std::int8_t>(t));
      break;
    case KeyType::I2:
      if (!fits<std::int16_t>(t)) return range("-32768..32767");
      write_le<std::int16_t>(out, static_cast<std::int16_t>(t));
      break;
    case KeyType::I4:
      if (!fits<std::int32_t>(t)) return range("-2^31..2^31-1");
      write_le<std::int32_t>(out, static_cast<std::int32_t>(t));
      break;
    case KeyType::I8:
      if (!fits<std::int64_t>(t)) return range("-2^63..2^63-1");
      write_le<std::int64_t>(out, static_cast<std::int64_t>(t));
      break;
    case KeyType::R4:
    case KeyType::R8:
      break;  // handled above
  }
  return out;
}

std::optional<double> decode_key_value_number(KeyType type, ByteSpan v) {
  if (v.size() != type_size(type)) return std::nullopt;
  switch (type) {
    case KeyType::R4:
      return static_cast<double>(std::bit_cast<float>(read_le<std::uint32_t>(v, 0)));
    case KeyType::R8:
      return std::bit_cast<double>(read_le<std::uint64_t>(v, 0));
    case KeyType::I1:
      return read_le<std::int8_t>(v, 0);
    case KeyType::I2:
      return read_le<std::int16_t>(v, 0);
    case KeyType::I4:
      return read_le<std::int32_t>(v, 0);
    case KeyType::I8:
      return static_cast<double>(read_le<std::int64_t>(v, 0));
    default: {
      std::uint64_t u = 0;
      for (std::size_t i = 0; i < v.size(); ++i) u |= std::uint64_t(v[i]) << (8 * i);
      return static_cast<double>(u);
    }
  }
}

Result<std::vector<CfgItem>> decode_cfg_items(ByteSpan data) {
  std::vector<CfgItem> items;
  std::size_t off = 0;
  while (off < data.size()) {
    if (data.size() - off < 4) {
      return Result<std::vector<CfgItem>>::failure(StatusCode::invalid_argument,
                                                   "configuration data ends inside a key id");
    }
    const auto key = read_le<std::uint32_t>(data, off);
    const std::size_t size = key_value_size(key);
    if (size == 0) {
      return Result<std::vector<CfgItem>>::failure(StatusCode::invalid_argument,
                                                   "configuration key has an invalid size code");
    }
    off += 4;
    if (data.size() - off < size) {
      return Result<std::vector<CfgItem>>::failure(StatusCode::invalid_argument,
                                                   "configuration data ends inside a value");
    }
    items.push_back({key, Bytes(data.begin() + static_cast<std::ptrdiff_t>(off),
                                data.begin() + static_cast<std::ptrdiff_t>(off + size))});
    off += size;
  }
  return items;
}

void append_cfg_items(Bytes& out, std::span<const CfgItem> items) {
  for (const auto& item : items) {
    write_le<std::uint32_t>(out, item.key);
    out.insert(out.end(), item.value.begin(), item.value.end());
  }
}

// ---------------------------------------------------------------------------

Result<Ack> decode_ack(MessageId msg, ByteSpan p) {
  if (msg != kAckAck && msg != kAckNak) {
    return Result<Ack>::failure(StatusCode::invalid_argument, "not an ACK-ACK or ACK-NAK message");
  }
  if (auto r = check_length("ACK", p, 2); !r) return r.error();
  return Ack{msg == kAckAck, p[0], p[1]};
}

Bytes encode_ack(const Ack& ack) {
  const std::uint8_t p[2] = {ack.cls_id, ack.msg_id};
  return encode_frame(ack.acknowledged ? kAckAck : kAckNak, p);
}

Result<TimTp> decode_tim_tp(ByteSpan p) {
  if (auto r = check_length("TIM-TP", p, 16); !r) return r.error();
  TimTp m;
  m.tow_ms = read_le<std::uint32_t>(p, 0);
  m.tow_sub_ms = read_le<std::uint32_t>(p, 4);
  m.q_err = read_le<std::int32_t>(p, 8);
  m.week = read_le<std::uint16_t>(p, 12);
  m.flags = p[14];
  m.ref_info = p[15];
  return m;
}

Bytes encode_tim_tp(const TimTp& m) {
  Bytes p;
  write_le(p, m.tow_ms);
  write_le(p, m.tow_sub_ms);
  write_le(p, m.q_err);
  write_le(p, m.week);
  p.push_back(m.flags);
  p.push_back(m.ref_info);
  return encode_frame(kTimTp, p);
}

Result<NavTimeUtc> decode_nav_timeutc(ByteSpan p) {
  if (auto r = check_length("NAV-TIMEUTC", p, 20); !r) return r.error();
  NavTimeUtc m;
  m.itow = read_le<std::uint32_t>(p, 0);
  m.t_acc = read_le<std::uint32_t>(p, 4);
  m.nano = read_le<std::int32_t>(p, 8);
  m.year = read_le<std::uint16_t>(p, 12);
  m.month = p[14];
  m.day = p[15];
  m.hour = p[16];
  m.min = p[17];
  m.sec = p[18];
  m.valid = p[19];
  return m;
}

Bytes encode_nav_timeutc(const NavTimeUtc& m) {
  Bytes p;
  write_le(p, m.itow);
  write_le(p, m.t_acc);
  write_le(p, m.nano);
  write_le(p, m.year);
  for (auto b : {m.month, m.day, m.hour, m.min, m.sec, m.valid}) p.push_back(b);
  return encode_frame(kNavTimeUtc, p);
}

std::string MonVer::model() const {
  for (const auto& e : extensions) {
    if (e.starts_with("MOD=")) {
      std::string m = e.substr(4);
      std::erase(m, '\0');
      return m;
    }
  }
  return "UNKNOWN";
}

Result<MonVer> decode_mon_ver(ByteSpan p) {
  if (p.size() < 40 || (p.size() - 40) % 30 != 0) {
    return Result<MonVer>::failure(StatusCode::invalid_argument,
                                   "MON-VER payload has " + std::to_string(p.size()) +
                                       " bytes, expected 40 + 30 per extension");
  }
  MonVer m;
  m.sw_version = char_field(p.subspan(0, 30));
  m.hw_version = char_field(p.subspan(30, 10));
  for (std::size_t off = 40; off < p.size(); off += 30)
    m.extensions.push_back(char_field(p.subspan(off, 30)));
  return m;
}

Bytes encode_mon_ver(const MonVer& m) {
  Bytes p;
  put_char_field(p, m.sw_version, 30);
  put_char_field(p, m.hw_version, 10);
  for (const auto& e : m.extensions) put_char_field(p, e, 30);
  return encode_frame(kMonVer, p);
}

std::uint64_t SecUniqid::unique_id_value() const {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < unique_id.size(); ++i) v |= std::uint64_t(unique_id[i]) << (8 * i);
  return v;
}

std::string SecUniqid::unique_id_hex() const {
  static constexpr char digits[] = "0123456789ABCDEF";
  const std::uint64_t v = unique_id_value();
  std::string s(10, '0');
  for (int i = 0; i < 10; ++i) s[9 - i] = digits[(v >> (4 * i)) & 15];
  return s;
}

Result<SecUniqid> SecUniqid::from_hex(std::string_view hex) {
  if (hex.size() != 10 || !std::all_of(hex.begin(), hex.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c));
      })) {
    return Result<SecUniqid>::failure(StatusCode::invalid_argument,
                                      "unique id '" + std::string(hex) + "' is not 10 hex digits");
  }
  const std::uint64_t v = std::stoull(std::string(hex), nullptr, 16);
  SecUniqid m;
  for (std::size_t i = 0; i < 5; ++i) m.unique_id[i] = static_cast<std::uint8_t>(v >> (8 * i));
  return m;
}

Result<SecUniqid> decode_sec_uniqid(ByteSpan p) {
  if (auto r = check_length("SEC-UNIQID", p, 9); !r) return r.error();
  SecUniqid m;
  m.version = p[0];
  std::copy_n(p.begin() + 1, 3, m.reserved.begin());
  std::copy_n(p.begin() + 4, 5, m.unique_id.begin());
  return m;
}

Bytes encode_sec_uniqid(const SecUniqid& m) {
  Bytes p;
  p.push_back(m.version);
  p.insert(p.end(), m.reserved.begin(), m.reserved.end());
  p.insert(p.end(), m.unique_id.begin(), m.unique_id.end());
  return encode_frame(kSecUniqid, p);
}

Result<CfgValset> decode_cfg_valset(ByteSpan p) {
  if (p.size() < 4)
    return Result<CfgValset>::failure(StatusCode::invalid_argument,
                                      "CFG-VALSET payload shorter than 4 bytes");
  CfgValset m;
  m.version = p[0];
  m.layers = p[1];
  m.transaction = p[2];
  auto items = decode_cfg_items(p.subspan(4));
  if (!items) return items.error();
  m.items = std::move(*items);
  return m;
}

Bytes encode_cfg_valset(const CfgValset& m) {
  Bytes p{m.version, m.layers, m.transaction, 0};
  append_cfg_items(p, m.items);
  return encode_frame(kCfgValset, p);
}

Result<CfgValgetPoll> decode_cfg_valget_poll(ByteSpan p) {
  if (p.size() < 4 || (p.size() - 4) % 4 != 0) {
    return Result<CfgValgetPoll>::failure(StatusCode::invalid_argument,
                                          "CFG-VALGET poll payload is not 4 + 4 per key bytes");
  }
  CfgValgetPoll m;
  m.version = p[0];
  m.layer = p[1];
  m.position = read_le<std::uint16_t>(p, 2);
  for (std::size_t off = 4; off < p.size(); off += 4)
    m.keys.push_back(read_le<std::uint32_t>(p, off));
  return m;
}

Result<CfgValgetReply> decode_cfg_valget_reply(ByteSpan p) {
  if (p.size() < 4) {
    return Result<CfgValgetReply>::failure(StatusCode::invalid_argument,
                                           "CFG-VALGET payload shorter than 4 bytes");
  }
  CfgValgetReply m;
  m.version = p[0];
  m.layer = p[1];
  m.position = read_le<std::uint16_t>(p, 2);
  auto items = decode_cfg_items(p.subspan(4));
  if (!items) return items.error();
  m.items = std::move(*items);
  return m;
}

Bytes encode_cfg_valget_poll(const CfgValgetPoll& m) {
  Bytes p{m.version, m.layer};
  write_le(p, m.position);
  for (auto k : m.keys) write_le(p, k);
  return encode_frame(kCfgValget, p);
}

Bytes encode_cfg_valget_reply(const CfgValgetReply& m) {
  Bytes p{m.version, m.layer};
  write_le(p, m.position);
  append_cfg_items(p, m.items);
  return encode_frame(kCfgValget, p);
}

// ---------------------------------------------------------------------------

bool valid_utf8(ByteSpan s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const std::uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n;
    std::uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

std::string bytes_to_text(ByteSpan bytes) {
  if (!valid_utf8(bytes)) return hex_of(bytes);
  std::size_t b = 0, e = bytes.size();
  while (b < e && bytes[b] == 0) ++b;
  while (e > b && bytes[e - 1] == 0) --e;
  return std::string(reinterpret_cast<const char*>(bytes.data()) + b, e - b);
}

namespace {

// pyubx2's name for a configuration key in CFG-VALGET/VALSET dictionaries,
// and how it decodes the value.
void add_cfg_items(nlohmann::json& d, std::span<const CfgItem> items) {
  for (const auto& item : items) {
    const CfgKey* key = find_key(item.key);
    if (!key) {
      // Undocumented key: pyubx2 names it CFG_0x<hex> and keeps the bytes.
      char name[16];
      std::snprintf(name, sizeof name, "CFG_0x%x", item.key);
      d[name] = bytes_to_text(item.value);
      continue;
    }
    const std::string name(key->name);
    switch (key->type) {
      case KeyType::X1:
      case KeyType::X2:
      case KeyType::X4:
      case KeyType::X8:
        d[name] = bytes_to_text(item.value);  // pyubx2 keeps bit fields as bytes
        break;
      default:
        if (auto v = decode_key_value_number(key->type, item.value)) {
          d[name] = *v;
        } else {
          d[name] = bytes_to_text(item.value);
        }
    }
  }
}

void add_typed_fields(nlohmann::json& d, MessageId msg, ByteSpan p, int& msgmode) {
  if (msg == kAckAck || msg == kAckNak) {
    if (auto a = decode_ack(msg, p)) {
      d["clsID"] = a->cls_id;
      d["msgID"] = a->msg_id;
    }
  } else if (msg == kTimTp) {
    if (auto m = decode_tim_tp(p)) {
      d["towMS"] = m->tow_ms;
      // pyubx2 scales by 2^-32 and rounds to 12 decimal places.
      d["towSubMS"] = std::round(std::ldexp(double(m->tow_sub_ms), -32) * 1e12) / 1e12;
      d["qErr"] = m->q_err;
      d["week"] = m->week;
      d["timeBase"] = m->flags & 1;
      d["utc"] = (m->flags >> 1) & 1;
      d["raim"] = (m->flags >> 2) & 3;
      d["qErrInvalid"] = (m->flags >> 4) & 1;
      d["TpNotLocked"] = (m->flags >> 5) & 1;
      d["timeRefGnss"] = m->ref_info & 15;
      d["utcStandard"] = m->ref_info >> 4;
    }
  } else if (msg == kNavTimeUtc) {
    if (auto m = decode_nav_timeutc(p)) {
      d["iTOW"] = m->itow;
      d["tAcc"] = m->t_acc;
      d["nano"] = m->nano;
      d["year"] = m->year;
      d["month"] = m->month;
      d["day"] = m->day;
      d["hour"] = m->hour;
      d["min"] = m->min;
      d["sec"] = m->sec;
      d["validTOW"] = m->valid & 1;
      d["validWKN"] = (m->valid >> 1) & 1;
      d["validUTC"] = (m->valid >> 2) & 1;
      d["authStatus"] = (m->valid >> 3) & 1;
      d["utcStandard"] = m->valid >> 4;
    }
  } else if (msg == kMonVer) {
    if (p.size() >= 40 && (p.size() - 40) % 30 == 0) {
      d["swVersion"] = bytes_to_text(p.subspan(0, 30));
      d["hwVersion"] = bytes_to_text(p.subspan(30, 10));
      char name[40];
      for (std::size_t off = 40, i = 1; off < p.size(); off += 30, ++i) {
        std::snprintf(name, sizeof name, "extension_%02zu", i);
        d[name] = bytes_to_text(p.subspan(off, 30));
      }
    }
  } else if (msg == kSecUniqid) {
    if (auto m = decode_sec_uniqid(p)) {
      d["version"] = m->version;
      d["reserved0"] = m->reserved[0] | (m->reserved[1] << 8) | (m->reserved[2] << 16);
      d["uniqueId"] = static_cast<double>(m->unique_id_value());
    }
  } else if (msg == kCfgValget) {
    if (p.size() >= 4 && p[0] == 0) {
      // A poll (version 0): pyubx2 reads it in POLL mode.
      if (auto m = decode_cfg_valget_poll(p)) {
        msgmode = 2;
        d["version"] = m->version;
        d["layer"] = m->layer;
        d["position"] = m->position;
        char name[40];
        for (std::size_t i = 0; i < m->keys.size(); ++i) {
          std::snprintf(name, sizeof name, "keys_%02zu", i + 1);
          d[name] = m->keys[i];
        }
      }
    } else if (auto m = decode_cfg_valget_reply(p)) {
      d["version"] = m->version;
      d["layer"] = m->layer;
      d["position"] = m->position;
      add_cfg_items(d, m->items);
    }
  } else if (msg == kCfgValset) {
    if (auto m = decode_cfg_valset(p)) {
      msgmode = 1;  // a command: pyubx2 reads it in SET mode
      d["version"] = m->version;
      d["ram"] = m->layers & 1;
      d["bbr"] = (m->layers >> 1) & 1;
      d["flash"] = (m->layers >> 2) & 1;
      d["action"] = m->transaction & 3;
      d["reserved0"] = p[3];
      add_cfg_items(d, m->items);
    }
  }
}

}  // namespace

nlohmann::json parsed_fields(const Frame& frame) {
  nlohmann::json d = nlohmann::json::object();
  const MessageId msg = frame.message_id();
  const ByteSpan p = frame.payload();
  int msgmode = 0;
  add_typed_fields(d, msg, p, msgmode);
  // Every number as a double, as a protobuf Struct carries it.
  for (auto& [k, v] : d.items()) {
    if (v.is_number()) v = v.get<double>();
  }
  d["identity"] = identity(msg);
  d["length"] = static_cast<double>(p.size());
  d["msgmode"] = static_cast<double>(msgmode);
  d["msg_cls"] = bytes_to_text(ByteSpan(&frame.bytes()[2], 1));
  d["msg_id"] = bytes_to_text(ByteSpan(&frame.bytes()[3], 1));
  d["payload"] = bytes_to_text(p);
  return d;
}

}  // namespace acheron::wire::ubx
