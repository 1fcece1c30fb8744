// UBX codec: worked examples of shared/specs/ublox.md section 7, every frame
// of a real ZED-F9T capture (test/data/ubx_packets.jsonl), the streaming
// parser under garbage and split reads, the key table and field names.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <random>
#include <string>

#include "acheron/wire/Ubx.hh"

namespace acheron::wire::ubx {
namespace {

Bytes hex(std::string_view s) {
  Bytes out;
  int nib = -1;
  for (char c : s) {
    int v;
    if (c >= '0' && c <= '9')
      v = c - '0';
    else if (c >= 'a' && c <= 'f')
      v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v = c - 'A' + 10;
    else
      continue;
    if (nib < 0) {
      nib = v;
    } else {
      out.push_back(static_cast<std::uint8_t>(nib * 16 + v));
      nib = -1;
    }
  }
  return out;
}

Bytes base64(std::string_view s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  Bytes out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    const int v = val(c);
    if (v < 0) continue;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>(acc >> bits));
    }
  }
  return out;
}

struct Record {
  std::string identity;
  Bytes frame;
};

std::vector<Record> sample_records() {
  std::ifstream in("test/data/ubx_packets.jsonl");
  std::vector<Record> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    out.push_back(
        {j.at("identity").get<std::string>(), base64(j.at("payload_b64").get<std::string>())});
  }
  return out;
}

Frame frame_of(const Bytes& b) {
  return Frame::from_bytes(b).value();
}

TEST(Ubx, ChecksumAndPollFramesMatchSpecExamples) {
  EXPECT_EQ(encode_poll(kMonVer), hex("b5 62 0a 04 00 00 0e 34"));
  EXPECT_EQ(encode_poll(kSecUniqid), hex("b5 62 27 03 00 00 2a a5"));
  EXPECT_EQ(encode_ack({true, 0x06, 0x8A}), hex("b5 62 05 01 02 00 06 8a 98 c1"));
  EXPECT_EQ(encode_ack({false, 0x06, 0x8A}), hex("b5 62 05 00 02 00 06 8a 97 bc"));
  EXPECT_EQ(encode_ack({true, 0x06, 0x8B}), hex("b5 62 05 01 02 00 06 8b 99 c2"));
}

TEST(Ubx, ValsetExampleEncodesByteForByte) {
  CfgValset m;
  m.layers = kLayerRam | kLayerBbr;
  const std::pair<const char*, double> items[] = {{"CFG_TP_FREQ_TP1", 1},
                                                  {"CFG_MSGOUT_UBX_TIM_TP_USB", 1},
                                                  {"CFG_TP_DUTY_TP1", 0.01},
                                                  {"CFG_TP_TP1_ENA", 1}};
  for (auto [name, value] : items) {
    const CfgKey* key = find_key(name);
    ASSERT_NE(key, nullptr) << name;
    m.items.push_back({key->id, encode_key_value(key->type, value).value()});
  }
  const Bytes want =
      hex("b5 62 06 8a 22 00 00 03 00 00 24 00 05 40 01 00 00 00 80 01 91 20 01 "
          "2a 00 05 50 7b 14 ae 47 e1 7a 84 3f 07 00 05 10 01 90 80");
  EXPECT_EQ(encode_cfg_valset(m), want);
  auto back = decode_cfg_valset(frame_of(want).payload()).value();
  EXPECT_EQ(back.layers, 3);
  EXPECT_EQ(back.items, m.items);
}

TEST(Ubx, ValgetPollAndReplyExamples) {
  CfgValgetPoll poll{0, kPollRam, 0, {0x40050024}};
  EXPECT_EQ(encode_cfg_valget_poll(poll), hex("b5 62 06 8b 08 00 00 00 00 00 24 00 05 40 02 6b"));
  const Bytes reply = hex("b5 62 06 8b 0c 00 01 00 00 00 24 00 05 40 01 00 00 00 08 bb");
  auto r = decode_cfg_valget_reply(frame_of(reply).payload()).value();
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.items[0].key, 0x40050024u);
  EXPECT_EQ(encode_cfg_valget_reply(r), reply);
  auto d = parsed_fields(frame_of(reply));
  EXPECT_EQ(d["identity"], "CFG-VALGET");
  EXPECT_EQ(d["CFG_TP_FREQ_TP1"], 1.0);
  EXPECT_EQ(d["version"], 1.0);
  EXPECT_EQ(d["msg_id"], "8b");  // 0x8B alone is not UTF-8: hex
  EXPECT_EQ(d["msg_cls"], "\x06");
}

TEST(Ubx, SecUniqidByteOrderRule) {
  const Bytes reply = hex("b5 62 27 03 09 00 01 00 00 00 bc 41 a2 03 df b5 06");
  auto m = decode_sec_uniqid(frame_of(reply).payload()).value();
  EXPECT_EQ(m.unique_id_hex(), "DF03A241BC");
  EXPECT_EQ(encode_sec_uniqid(SecUniqid::from_hex("DF03A241BC").value()), reply);
  const Bytes string_order = hex("b5 62 27 03 09 00 01 00 00 00 df 03 a2 41 bc b5 16");
  EXPECT_EQ(decode_sec_uniqid(frame_of(string_order).payload())->unique_id_hex(), "BC41A203DF");
  EXPECT_FALSE(SecUniqid::from_hex("DF03A241B").ok());
  EXPECT_FALSE(SecUniqid::from_hex("DF03A241BX").ok());
  auto d = parsed_fields(frame_of(reply));
  EXPECT_EQ(d["uniqueId"], static_cast<double>(0xDF03A241BCull));
  EXPECT_EQ(d["version"], 1.0);
  EXPECT_EQ(d["reserved0"], 0.0);
}

TEST(Ubx, MonVerModelAndFields) {
  MonVer m{"ROM SPG 5.10 (7b202e)",
           "00190000",
           {"ROM BASE 0x118B2060", "FWVER=TIM 2.20", "PROTVER=29.20", "MOD=ZED-F9T"}};
  const Bytes f = encode_mon_ver(m);
  EXPECT_EQ(f.size(), 160u + kOverhead);
  auto back = decode_mon_ver(frame_of(f).payload()).value();
  EXPECT_EQ(back.sw_version, m.sw_version);
  EXPECT_EQ(back.extensions, m.extensions);
  EXPECT_EQ(back.model(), "ZED-F9T");
  auto d = parsed_fields(frame_of(f));
  EXPECT_EQ(d["swVersion"], "ROM SPG 5.10 (7b202e)");
  EXPECT_EQ(d["hwVersion"], "00190000");
  EXPECT_EQ(d["extension_04"], "MOD=ZED-F9T");
  EXPECT_FALSE(d.contains("extension_05"));
  EXPECT_EQ(d["length"], 160.0);
  EXPECT_EQ(d["msg_cls"], "\n");
  EXPECT_EQ(MonVer{}.model(), "UNKNOWN");
  EXPECT_FALSE(decode_mon_ver(Bytes(41, 0)).ok());
}

TEST(Ubx, FirstCapturedTimTpHasTheSpecFields) {
  const Bytes f = hex("b5 62 0d 01 10 00 60 5f 49 10 00 00 00 00 fe 09 00 00 4b 09 0b 3f db 61");
  auto d = parsed_fields(frame_of(f));
  const nlohmann::json want = {{"towMS", 273244000.0},
                               {"towSubMS", 0.0},
                               {"qErr", 2558.0},
                               {"week", 2379.0},
                               {"timeBase", 1.0},
                               {"utc", 1.0},
                               {"raim", 2.0},
                               {"qErrInvalid", 0.0},
                               {"TpNotLocked", 0.0},
                               {"timeRefGnss", 15.0},
                               {"utcStandard", 3.0},
                               {"identity", "TIM-TP"},
                               {"length", 16.0},
                               {"msg_cls", "\r"},
                               {"msg_id", "\x01"},
                               {"msgmode", 0.0},
                               {"payload", "605f491000000000fe0900004b090b3f"}};
  EXPECT_EQ(d, want) << d.dump();
}

TEST(Ubx, CapturedNavTimeUtc) {
  const Bytes f =
      hex("b5 62 01 21 14 00 e0 9d 49 10 3e 00 00 00 df a7 05 00 e9 07 08 0d 03 36 02 37 4c a6");
  auto m = decode_nav_timeutc(frame_of(f).payload()).value();
  EXPECT_EQ(m.itow, 273260000u);
  EXPECT_EQ(m.t_acc, 62u);
  EXPECT_EQ(m.nano, 370655);
  EXPECT_EQ(m.year, 2025);
  EXPECT_EQ(m.month, 8);
  EXPECT_EQ(m.day, 13);
  EXPECT_EQ(m.hour, 3);
  EXPECT_EQ(m.min, 54);
  EXPECT_EQ(m.sec, 2);
  auto d = parsed_fields(frame_of(f));
  EXPECT_EQ(d["validTOW"], 1.0);
  EXPECT_EQ(d["validWKN"], 1.0);
  EXPECT_EQ(d["validUTC"], 1.0);
  EXPECT_EQ(d["authStatus"], 0.0);
  EXPECT_EQ(d["utcStandard"], 3.0);
  EXPECT_EQ(d["identity"], "NAV-TIMEUTC");
}

// Every frame of the real capture: framing, identity, typed decoding that
// re-encodes to the same bytes, and field names per identity.
TEST(Ubx, EverySampleFrameDecodesAndReencodesByteForByte) {
  const auto records = sample_records();
  ASSERT_EQ(records.size(), 81u) << "test/data/ubx_packets.jsonl missing or changed";
  int tim = 0, nav = 0, ack = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    SCOPED_TRACE("record " + std::to_string(i) + " " + r.identity);
    auto f = Frame::from_bytes(r.frame);
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_EQ(identity(f->message_id()), r.identity);
    auto d = parsed_fields(*f);
    EXPECT_EQ(d["identity"], r.identity);
    EXPECT_EQ(d["length"], static_cast<double>(r.frame.size() - kOverhead));
    for (auto& [k, v] : d.items()) EXPECT_NE(k[0], '_');
    if (r.identity == "TIM-TP") {
      ++tim;
      auto m = decode_tim_tp(f->payload()).value();
      EXPECT_EQ(encode_tim_tp(m), r.frame);
      EXPECT_EQ(d.size(), 17u);
      EXPECT_EQ(d["towMS"], static_cast<double>(m.tow_ms));
      EXPECT_EQ(d["qErr"], static_cast<double>(m.q_err));
      EXPECT_GE(m.q_err, -4000);
      EXPECT_LE(m.q_err, 4000);
      EXPECT_EQ(m.week, 2379);
      EXPECT_TRUE(m.flags == 0x0B || m.flags == 0x07);
      EXPECT_EQ(m.ref_info, 0x3F);
    } else if (r.identity == "NAV-TIMEUTC") {
      ++nav;
      auto m = decode_nav_timeutc(f->payload()).value();
      EXPECT_EQ(encode_nav_timeutc(m), r.frame);
      EXPECT_EQ(d.size(), 20u);
      EXPECT_EQ(m.valid, 0x37);
      EXPECT_EQ(d["year"], 2025.0);
      // iTOW is GPS time: 18 s ahead of the UTC fields.
      const std::uint32_t utc_tow_s = (m.itow / 1000 - 18) % 86400;
      EXPECT_EQ(utc_tow_s, m.hour * 3600u + m.min * 60u + m.sec);
    } else {
      ASSERT_EQ(r.identity, "ACK-ACK");
      ++ack;
      auto a = decode_ack(f->message_id(), f->payload()).value();
      EXPECT_EQ(encode_ack(a), r.frame);
      EXPECT_EQ(a.cls_id, 0x06);
      EXPECT_EQ(a.msg_id, 0x8B);
      EXPECT_EQ(d["clsID"], 6.0);
      EXPECT_EQ(d["msgID"], 139.0);
    }
  }
  EXPECT_EQ(tim, 40);
  EXPECT_EQ(nav, 40);
  EXPECT_EQ(ack, 1);
}

TEST(Ubx, ParserFindsEverySampleFrameInNoiseAndRandomSplits) {
  const auto records = sample_records();
  ASSERT_FALSE(records.empty());
  Bytes stream;
  std::mt19937 rng(7);
  for (const auto& r : records) {
    // Noise between frames: NMEA, a lone sync byte, random bytes, a false
    // sync with a short length and a broken checksum.
    const std::string nmea = "$GNGGA,035402.00,,,,,0,00,99.99,,,,,,*7A\r\n";
    stream.insert(stream.end(), nmea.begin(), nmea.end());
    stream.push_back(kSync1);
    for (int k = 0; k < 5; ++k) stream.push_back(static_cast<std::uint8_t>(rng()));
    for (auto b : hex("b5 62 0d 01 02 00 aa bb 00 00")) stream.push_back(b);
    stream.insert(stream.end(), r.frame.begin(), r.frame.end());
  }
  StreamParser parser;
  std::vector<Bytes> got;
  std::size_t off = 0;
  while (off < stream.size()) {
    const std::size_t n = std::min<std::size_t>(1 + rng() % 23, stream.size() - off);
    parser.feed(ByteSpan(stream).subspan(off, n));
    off += n;
    while (auto f = parser.next()) got.push_back(f->bytes());
  }
  ASSERT_EQ(got.size(), records.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], records[i].frame) << i;
  EXPECT_EQ(parser.stats().frames, records.size());
  EXPECT_GE(parser.stats().bad_checksum, records.size());
}

TEST(Ubx, ParserBoundsLengthAndWaitsForSplitHeader) {
  StreamParser parser(64);
  const Bytes big = encode_frame({0x01, 0x07}, Bytes(100, 0x11));
  const Bytes small = encode_poll(kMonVer);
  parser.feed(big);
  parser.feed(small);
  auto f = parser.next();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->bytes(), small);
  EXPECT_EQ(parser.stats().oversize, 1u);
  // One byte at a time: nothing until the checksum's last byte.
  for (std::size_t i = 0; i + 1 < small.size(); ++i) {
    parser.feed(ByteSpan(&small[i], 1));
    EXPECT_FALSE(parser.next()) << i;
  }
  parser.feed(ByteSpan(&small.back(), 1));
  EXPECT_TRUE(parser.next());
  EXPECT_EQ(parser.buffered(), 0u);
}

TEST(Ubx, FrameValidation) {
  Bytes f = encode_poll(kMonVer);
  EXPECT_TRUE(Frame::from_bytes(f).ok());
  f.back() ^= 1;
  EXPECT_FALSE(Frame::from_bytes(f).ok());
  EXPECT_FALSE(Frame::from_bytes(hex("b5 62 0a")).ok());
  EXPECT_FALSE(Frame::from_bytes(hex("b5 63 0a 04 00 00 0e 34")).ok());
  EXPECT_FALSE(decode_tim_tp(Bytes(15, 0)).ok());
  EXPECT_FALSE(decode_nav_timeutc(Bytes(21, 0)).ok());
  EXPECT_FALSE(decode_ack(kAckAck, Bytes(3, 0)).ok());
  EXPECT_FALSE(decode_ack(kTimTp, Bytes(2, 0)).ok());
  EXPECT_FALSE(decode_cfg_valset(hex("00 01 00 00 24 00 05 40 01")).ok());  // value cut short
  EXPECT_FALSE(decode_cfg_valset(hex("00 01 00 00 24 00 05 00 01")).ok());  // size code 0
  EXPECT_FALSE(decode_cfg_valget_poll(hex("00 00 00 00 24 00 05")).ok());
}

TEST(Ubx, IdentityOfUnknownMessagesIsNominal) {
  EXPECT_EQ(identity(kTimTp), "TIM-TP");
  EXPECT_EQ(identity({0x01, 0x07}), "NAV-PVT");
  EXPECT_EQ(identity({0x0D, 0xEE}), "TIM-0dee-NOMINAL");
  EXPECT_EQ(identity({0x77, 0x01}), "UNKNOWN-7701-NOMINAL");
  auto d = parsed_fields(frame_of(encode_frame({0x77, 0x01}, hex("00 41 00"))));
  EXPECT_EQ(d["identity"], "UNKNOWN-7701-NOMINAL");
  EXPECT_EQ(d["payload"], "A");  // valid UTF-8: NULs at the ends stripped
  EXPECT_EQ(d.size(), 6u);
}

TEST(Ubx, KeyTableHasEverySpecKeyWithItsIdAndType) {
  const std::tuple<const char*, std::uint32_t, KeyType> keys[] = {
      {"CFG_TP_FREQ_TP1", 0x40050024, KeyType::U4},
      {"CFG_TP_DUTY_TP1", 0x5005002A, KeyType::R8},
      {"CFG_TP_TP1_ENA", 0x10050007, KeyType::L},
      {"CFG_TP_PULSE_DEF", 0x20050023, KeyType::E1},
      {"CFG_TP_ANT_CABLEDELAY", 0x30050001, KeyType::I2},
      {"CFG_MSGOUT_UBX_TIM_TP_USB", 0x20910180, KeyType::U1},
      {"CFG_MSGOUT_UBX_TIM_TP_UART1", 0x2091017E, KeyType::U1},
      {"CFG_MSGOUT_UBX_NAV_TIMEUTC_USB", 0x2091005E, KeyType::U1},
      {"CFG_MSGOUT_UBX_NAV_TIMEUTC_UART1", 0x2091005C, KeyType::U1},
      {"CFG_TMODE_MODE", 0x20030001, KeyType::E1},
      {"CFG_TMODE_POS_TYPE", 0x20030002, KeyType::E1},
      {"CFG_TMODE_LAT", 0x40030009, KeyType::I4},
      {"CFG_TMODE_LON", 0x4003000A, KeyType::I4},
      {"CFG_TMODE_HEIGHT", 0x4003000B, KeyType::I4},
      {"CFG_TMODE_LAT_HP", 0x2003000C, KeyType::I1},
      {"CFG_TMODE_LON_HP", 0x2003000D, KeyType::I1},
      {"CFG_TMODE_HEIGHT_HP", 0x2003000E, KeyType::I1},
      {"CFG_TMODE_FIXED_POS_ACC", 0x4003000F, KeyType::U4},
      // Keys PANOSETI's default file sets that the F9T register CSV lacks.
      {"CFG_SIGNAL_GPS_L5_ENA", 0x10310004, KeyType::L},
      {"CFG_SIGNAL_BDS_B1C_ENA", 0x1031000F, KeyType::L},
      {"CFG_SIGNAL_BDS_B2A_ENA", 0x10310028, KeyType::L},
      {"CFG_SIGNAL_QZSS_L5_ENA", 0x10310017, KeyType::L},
      {"CFG_SIGNAL_NAVIC_ENA", 0x10310026, KeyType::L},
      {"CFG_SIGNAL_NAVIC_L5_ENA", 0x1031001D, KeyType::L},
  };
  for (auto [name, id, type] : keys) {
    const CfgKey* k = find_key(name);
    ASSERT_NE(k, nullptr) << name;
    EXPECT_EQ(k->id, id) << name;
    EXPECT_EQ(k->type, type) << name;
    EXPECT_EQ(find_key(id), k) << name;
  }
  EXPECT_EQ(find_key("CFG-TP-ANT_CABLEDELAY"), find_key("CFG_TP_ANT_CABLEDELAY"));
  EXPECT_EQ(find_key("cfg_tp_freq_tp1"), find_key("CFG_TP_FREQ_TP1"));
  EXPECT_EQ(find_key("CFG_NO_SUCH_KEY"), nullptr);
  // The size bits of every key agree with its type.
  for (const auto& k : all_keys()) EXPECT_EQ(key_value_size(k.id), type_size(k.type)) << k.name;
  EXPECT_GT(all_keys().size(), 1000u);
}

TEST(Ubx, KeyValuesConvertLikePythonInt) {
  EXPECT_EQ(encode_key_value(KeyType::U4, 1.9).value(), hex("01 00 00 00"));
  EXPECT_EQ(encode_key_value(KeyType::I2, -10.7).value(), hex("f6 ff"));
  EXPECT_EQ(encode_key_value(KeyType::I1, -128).value(), hex("80"));
  EXPECT_EQ(encode_key_value(KeyType::L, 1).value(), hex("01"));
  EXPECT_FALSE(encode_key_value(KeyType::L, 2).ok());
  EXPECT_FALSE(encode_key_value(KeyType::U1, 256).ok());
  EXPECT_FALSE(encode_key_value(KeyType::U1, -1).ok());
  EXPECT_FALSE(encode_key_value(KeyType::I1, 128).ok());
  EXPECT_FALSE(encode_key_value(KeyType::U4, 4294967296.0).ok());
  EXPECT_FALSE(encode_key_value(KeyType::R8, std::nan("")).ok());
  EXPECT_EQ(decode_key_value_number(KeyType::R8, encode_key_value(KeyType::R8, 0.01).value()),
            0.01);
  EXPECT_EQ(
      decode_key_value_number(KeyType::I4, encode_key_value(KeyType::I4, -1220840575).value()),
      -1220840575.0);
  EXPECT_EQ(decode_key_value_number(KeyType::U8, hex("ff ff ff ff ff ff ff ff")),
            18446744073709551615.0);
  EXPECT_FALSE(decode_key_value_number(KeyType::U4, hex("01")));
}

TEST(Ubx, Utf8RuleMatchesPython) {
  EXPECT_TRUE(valid_utf8(hex("41 c3 a9 e2 82 ac f0 9f 98 80")));
  EXPECT_FALSE(valid_utf8(hex("c0 80")));        // overlong
  EXPECT_FALSE(valid_utf8(hex("ed a0 80")));     // surrogate
  EXPECT_FALSE(valid_utf8(hex("f4 90 80 80")));  // above U+10FFFF
  EXPECT_FALSE(valid_utf8(hex("e2 82")));        // cut short
  EXPECT_FALSE(valid_utf8(hex("8b")));
  EXPECT_EQ(bytes_to_text(hex("00 00 41 00 42 00")), std::string("A\0B", 3));
  EXPECT_EQ(bytes_to_text(hex("06 8b")), "068b");
}

}  // namespace
}  // namespace acheron::wire::ubx
