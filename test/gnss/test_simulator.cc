// The simulated ZED-F9T on a real pseudo-terminal, through the serial port
// and UBX device classes the service uses.
#include <gtest/gtest.h>

#include <ctime>

#include "GnssTestSupport.hh"
#include "acheron/gnss/Device.hh"

namespace acheron::gnss {
namespace {
namespace ubx = wire::ubx;
using namespace test;

std::uint32_t id_of(const char* name) {
  return ubx::find_key(name)->id;
}

ubx::Bytes valset(std::uint8_t layers, std::vector<std::pair<const char*, double>> items,
                  std::uint8_t version = 0, std::uint8_t txn = 0) {
  ubx::CfgValset m;
  m.version = version;
  m.layers = layers;
  m.transaction = txn;
  for (auto [name, v] : items) {
    const auto* k = ubx::find_key(name);
    m.items.push_back({k->id, ubx::encode_key_value(k->type, v).value()});
  }
  return ubx::encode_cfg_valset(m);
}

TEST(Simulator, AnswersModelAndUniqueIdPolls) {
  SimulatedF9t sim(fast_sim());
  UbxDevice dev(SerialPort(sim.device_path(), 115200));
  auto ver = dev.poll(ubx::kMonVer, 1s);
  ASSERT_TRUE(ver);
  EXPECT_EQ(ver->payload().size(), 160u);
  auto mon = ubx::decode_mon_ver(ver->payload()).value();
  EXPECT_EQ(mon.model(), "ZED-F9T");
  EXPECT_EQ(mon.sw_version, "ROM SPG 5.10 (7b202e)");
  EXPECT_EQ(mon.extensions.at(1), "FWVER=TIM 2.20");
  auto uid = dev.poll(ubx::kSecUniqid, 1s);
  ASSERT_TRUE(uid);
  // The spec's byte order: the printed id reversed on the wire.
  const ubx::Bytes want = {0xb5, 0x62, 0x27, 0x03, 0x09, 0x00, 0x01, 0x00, 0x00,
                           0x00, 0xbc, 0x41, 0xa2, 0x03, 0xdf, 0xb5, 0x06};
  EXPECT_EQ(uid->bytes(), want);
  SimFaults f;
  f.wrong_model = true;
  sim.set_faults(f);
  EXPECT_EQ(ubx::decode_mon_ver(dev.poll(ubx::kMonVer, 1s)->payload())->model(), "ZED-F9P");
}

TEST(Simulator, StoresPerLayerAndAnswersValget) {
  SimulatedF9t sim(fast_sim());
  UbxDevice dev(SerialPort(sim.device_path(), 115200));
  EXPECT_EQ(dev.command(valset(ubx::kLayerRam | ubx::kLayerBbr,
                               {{"CFG_TP_FREQ_TP1", 5}, {"CFG_TP_DUTY_TP1", 0.25}}),
                        1s),
            AckResult::ack);
  EXPECT_EQ(dev.command(valset(ubx::kLayerFlash, {{"CFG_TP_FREQ_TP1", 7}}), 1s), AckResult::ack);
  const std::uint32_t freq = id_of("CFG_TP_FREQ_TP1"), duty = id_of("CFG_TP_DUTY_TP1"),
                      ena = id_of("CFG_TP_TP2_ENA");
  EXPECT_EQ(sim.stored(ubx::kLayerRam, freq), (ubx::Bytes{5, 0, 0, 0}));
  EXPECT_EQ(sim.stored(ubx::kLayerFlash, freq), (ubx::Bytes{7, 0, 0, 0}));
  EXPECT_FALSE(sim.stored(ubx::kLayerFlash, duty));
  auto ram = dev.valget({freq, duty, ena}, ubx::kPollRam, 1s, 100ms);
  ASSERT_EQ(ram.size(), 3u);
  EXPECT_EQ(ram[freq], (ubx::Bytes{5, 0, 0, 0}));
  EXPECT_EQ(ubx::decode_key_value_number(ubx::KeyType::R8, ram[duty]), 0.25);
  EXPECT_EQ(ram[ena], ubx::Bytes{0});  // never written: default
  auto flash = dev.valget({freq, duty}, ubx::kPollFlash, 1s, 100ms);
  EXPECT_EQ(flash.size(), 1u);  // duty not stored in flash: left out
  EXPECT_EQ(flash[freq], (ubx::Bytes{7, 0, 0, 0}));
  auto def = dev.valget({freq}, ubx::kPollDefault, 1s, 100ms);
  EXPECT_EQ(def[freq], (ubx::Bytes{0, 0, 0, 0}));
  // An unknown key: NAK, nothing returned.
  EXPECT_TRUE(dev.valget({0x40FF0FFF}, ubx::kPollRam, 1s, 100ms).empty());
  EXPECT_GE(sim.stats().naks, 1u);
}

TEST(Simulator, NaksBadValsets) {
  SimulatedF9t sim(fast_sim());
  UbxDevice dev(SerialPort(sim.device_path(), 115200));
  EXPECT_EQ(dev.command(valset(0, {{"CFG_TP_FREQ_TP1", 1}}), 1s), AckResult::nak);  // no layer
  ubx::CfgValset unknown{0, ubx::kLayerRam, 0, {{0x40FF0FFF, {1, 0, 0, 0}}}};
  EXPECT_EQ(dev.command(ubx::encode_cfg_valset(unknown), 1s), AckResult::nak);  // strict key table
  ubx::CfgValset many{0, ubx::kLayerRam, 0, {}};
  for (int i = 0; i < 65; ++i) many.items.push_back({id_of("CFG_TP_FREQ_TP1"), {1, 0, 0, 0}});
  EXPECT_EQ(dev.command(ubx::encode_cfg_valset(many), 1s), AckResult::nak);  // > 64 pairs
  EXPECT_EQ(dev.command(ubx::encode_frame(ubx::kCfgValset,
                                          ubx::Bytes{0, 1, 0, 0, 0x24, 0x00, 0x05, 0x40, 1}),
                        1s),
            AckResult::nak);  // value cut short
  EXPECT_EQ(dev.command(valset(ubx::kLayerRam, {{"CFG_TP_FREQ_TP1", 1}}, 1, 2), 1s),
            AckResult::nak);  // continue, no begin
  SimFaults f;
  f.nak_keys = {id_of("CFG_TP_FREQ_TP2")};
  sim.set_faults(f);
  EXPECT_EQ(dev.command(valset(ubx::kLayerRam, {{"CFG_TP_FREQ_TP1", 1}}), 1s), AckResult::ack);
  EXPECT_EQ(
      dev.command(valset(ubx::kLayerRam, {{"CFG_TP_FREQ_TP1", 1}, {"CFG_TP_FREQ_TP2", 9}}), 1s),
      AckResult::nak);
  f = {};
  f.silent = true;
  sim.set_faults(f);
  EXPECT_EQ(dev.command(valset(ubx::kLayerRam, {{"CFG_TP_FREQ_TP1", 1}}), 200ms),
            AckResult::timeout);
}

TEST(Simulator, TransactionAppliesOnlyAtTheEnd) {
  SimulatedF9t sim(fast_sim());
  UbxDevice dev(SerialPort(sim.device_path(), 115200));
  const auto freq = id_of("CFG_TP_FREQ_TP2"), ena = id_of("CFG_TP_TP2_ENA");
  EXPECT_EQ(dev.command(valset(ubx::kLayerRam, {{"CFG_TP_FREQ_TP2", 10}}, 1, 1), 1s),
            AckResult::ack);
  EXPECT_EQ(dev.command(valset(ubx::kLayerRam, {{"CFG_TP_TP2_ENA", 1}}, 1, 2), 1s), AckResult::ack);
  EXPECT_FALSE(sim.stored(ubx::kLayerRam, freq));
  EXPECT_EQ(dev.command(valset(ubx::kLayerRam, {}, 1, 3), 1s), AckResult::ack);
  EXPECT_EQ(sim.stored(ubx::kLayerRam, freq), (ubx::Bytes{10, 0, 0, 0}));
  EXPECT_EQ(sim.stored(ubx::kLayerRam, ena), ubx::Bytes{1});
}

TEST(Simulator, EmitsConsistentTimingMessagesOncePerPeriod) {
  SimulatedF9t sim(fast_sim());
  UbxDevice dev(SerialPort(sim.device_path(), 115200));
  // Nothing is emitted until an output rate is set.
  EXPECT_FALSE(dev.read(deadline_after(150ms)));
  ASSERT_EQ(dev.command(valset(ubx::kLayerRam, {{"CFG_MSGOUT_UBX_TIM_TP_USB", 1},
                                                {"CFG_MSGOUT_UBX_NAV_TIMEUTC_UART1", 1}}),
                        1s),
            AckResult::ack);
  std::vector<ubx::Frame> frames;
  const auto end = deadline_after(3s);
  while (frames.size() < 12 && Clock::now() < end) {
    if (auto f = dev.read(end)) frames.push_back(std::move(f->frame));
  }
  ASSERT_EQ(frames.size(), 12u);
  std::size_t start = frames[0].message_id() == ubx::kTimTp ? 0 : 1;
  std::optional<std::int64_t> last_utc;
  for (std::size_t i = start; i + 1 < frames.size(); i += 2) {
    ASSERT_EQ(frames[i].message_id(), ubx::kTimTp) << i;
    ASSERT_EQ(frames[i + 1].message_id(), ubx::kNavTimeUtc) << i;
    const auto tp = ubx::decode_tim_tp(frames[i].payload()).value();
    const auto nav = ubx::decode_nav_timeutc(frames[i + 1].payload()).value();
    EXPECT_EQ(tp.flags, 0x0B);
    EXPECT_EQ(tp.ref_info, 0x3F);
    EXPECT_GE(tp.q_err, -4000);
    EXPECT_LE(tp.q_err, 4000);
    EXPECT_EQ(nav.valid, 0x37);
    EXPECT_GE(nav.t_acc, 55u);
    EXPECT_LE(nav.t_acc, 95u);
    EXPECT_LT(std::abs(nav.nano), 1'000'000'000);
    std::tm tm{};
    tm.tm_year = nav.year - 1900;
    tm.tm_mon = nav.month - 1;
    tm.tm_mday = nav.day;
    tm.tm_hour = nav.hour;
    tm.tm_min = nav.min;
    tm.tm_sec = nav.sec;
    const std::int64_t utc = ::timegm(&tm);
    const std::int64_t since_gps = utc - 315964800;
    // NAV-TIMEUTC: GPS time of week, 18 s ahead of UTC.
    EXPECT_EQ(nav.itow, static_cast<std::uint32_t>(((since_gps + 18) % 604800) * 1000));
    // TIM-TP: the next pulse, UTC time base.
    EXPECT_EQ(tp.tow_ms, static_cast<std::uint32_t>(((since_gps + 1) % 604800) * 1000));
    EXPECT_EQ(tp.week, (since_gps + 1) / 604800);
    if (last_utc) {
      EXPECT_EQ(utc, *last_utc + 1);  // one simulated second per period
    }
    last_utc = utc;
    // Close to the wall clock (the simulation started now).
    EXPECT_LT(std::abs(utc - wall_time_ns() / 1'000'000'000), 60);
  }
}

TEST(Simulator, FaultsCorruptAndInterleave) {
  auto opts = fast_sim();
  opts.faults.nmea = true;
  SimulatedF9t sim(opts);
  UbxDevice dev(SerialPort(sim.device_path(), 115200));
  ASSERT_EQ(dev.command(valset(ubx::kLayerRam, {{"CFG_MSGOUT_UBX_TIM_TP_USB", 1}}), 1s),
            AckResult::ack);
  // NMEA in between: the parser skips it and still finds the frames.
  auto f = dev.read(deadline_after(1s));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->frame.message_id(), ubx::kTimTp);
  SimFaults bad;
  bad.corrupt_checksums = true;
  sim.set_faults(bad);
  std::this_thread::sleep_for(100ms);
  while (dev.read(deadline_after(1ms))) {
  }
  EXPECT_FALSE(dev.read(deadline_after(200ms)));  // every frame now fails its checksum
}

TEST(Simulator, UnplugHangsUpTheReader) {
  SimulatedF9t sim(fast_sim());
  SerialPort port(sim.device_path(), 115200);
  sim.unplug();
  std::uint8_t buf[64];
  std::size_t n = 0;
  ReadStatus st = ReadStatus::timeout;
  for (int i = 0; i < 20 && st == ReadStatus::timeout; ++i) st = port.read(buf, 50ms, &n);
  EXPECT_EQ(st, ReadStatus::closed);
}

TEST(Simulator, LinkPathPointsAtThePty) {
  auto opts = fast_sim();
  opts.link = ::testing::TempDir() + "/acheron_f9t_link";
  {
    SimulatedF9t sim(opts);
    EXPECT_EQ(sim.device_path(), opts.link);
    UbxDevice dev(SerialPort(sim.device_path(), 115200));
    EXPECT_TRUE(dev.poll(ubx::kMonVer, 1s));
  }
  EXPECT_FALSE(std::filesystem::exists(opts.link));
}

}  // namespace
}  // namespace acheron::gnss
