// UBX frames as JSON field dictionaries (pyubx2's names), and the text
// helpers they use.
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

}  // namespace

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
