// UBX message payloads: ACK, TIM-TP, NAV-TIMEUTC, MON-VER, SEC-UNIQID and
// the CFG-VALSET/VALGET messages, each decoded and encoded.
#include "acheron/wire/Ubx.hh"
#include "acheron/wire/UbxInternal.hh"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace acheron::wire::ubx {
namespace {

Result<int> check_length(std::string_view what, ByteSpan payload, std::size_t want) {
  if (payload.size() != want) {
    return Result<int>::failure(StatusCode::invalid_argument, std::string(what) + " payload has " +
                                                                  std::to_string(payload.size()) +
                                                                  " bytes, expected " +
                                                                  std::to_string(want));
  }
  return 0;
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

}  // namespace acheron::wire::ubx
