// JSON5 normaliser and F9T configuration validation (no devices).
#include <gtest/gtest.h>

#include <chrono>

#include "acheron/core/Error.hh"
#include "acheron/gnss/Config.hh"
#include "acheron/gnss/Json5.hh"

namespace acheron::gnss {
namespace {

std::string failure_message(const std::function<void()>& f,
                            StatusCode want = StatusCode::invalid_argument) {
  try {
    f();
  } catch (const Failure& e) {
    EXPECT_EQ(e.code(), want) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no Failure thrown";
  return {};
}

nlohmann::json default_request() {
  return chip_request_config(parse_json5(default_f9t_config_json5()), 0);
}

TEST(Json5, AcceptsTheDocumentedSubset) {
  const auto j = parse_json5(R"(
    // line comment
    {
      unquoted_key: 'single "quoted"', /* block
      comment */ "hex": 0x1F, plus: +3, half: .5, five: 5.,
      "list": [1, 2, 3,],
      'nested': { a: true, b: null, c: -0x10, },
      "url": "http://x//y", "esc": 'it\'s',
    }
  )");
  EXPECT_EQ(j["unquoted_key"], "single \"quoted\"");
  EXPECT_EQ(j["hex"], 31);
  EXPECT_EQ(j["plus"], 3);
  EXPECT_EQ(j["half"], 0.5);
  EXPECT_EQ(j["five"], 5.0);
  EXPECT_EQ(j["list"], nlohmann::json({1, 2, 3}));
  EXPECT_EQ(j["nested"]["a"], true);
  EXPECT_TRUE(j["nested"]["b"].is_null());
  EXPECT_EQ(j["nested"]["c"], -16);
  EXPECT_EQ(j["url"], "http://x//y");
  EXPECT_EQ(j["esc"], "it's");
  EXPECT_EQ(parse_json5("[1, 2, 3]"), nlohmann::json({1, 2, 3}));
}

// fuzz_json5 ran a 60 KB list for 10 s (under ASan): each comma copied the
// output so far. 200,000 elements took minutes; now milliseconds.
TEST(Json5, LongListsParseInLinearTime) {
  std::string text = "[";
  for (int i = 0; i < 200000; ++i) text += "1, ";
  text += "]";
  const auto t0 = std::chrono::steady_clock::now();
  const auto j = parse_json5(text);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(j.size(), 200000u);
}

TEST(Json5, ErrorsNameTheLine) {
  auto msg = [](const char* text) {
    try {
      parse_json5(text);
    } catch (const SetupError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(msg("{\n  \"a\": 1,\n  b: Infinity\n}").find("line 3"), std::string::npos);
  EXPECT_NE(msg("{\"a\": 'unterminated}").find("unterminated string"), std::string::npos);
  EXPECT_NE(msg("{\"a\": 1 /* open").find("unterminated /* comment"), std::string::npos);
  EXPECT_NE(msg("{\"a\": yes}").find("unquoted word 'yes'"), std::string::npos);
  EXPECT_NE(msg("{\"a\": 1,, }").find("not valid JSON5"), std::string::npos);
  // Found by fuzz_json5: a number beyond double's range is nlohmann's
  // out_of_range, which escaped as a JSON exception instead of a SetupError.
  EXPECT_NE(msg("{baud: 1e3004}").find("not valid JSON5"), std::string::npos);
  EXPECT_NE(msg("[-1E400]").find("number overflow"), std::string::npos);
}

TEST(Config, DefaultFileGivesFortyNineItemsInTwoGroups) {
  const auto file = parse_json5(default_f9t_config_json5());
  EXPECT_EQ(file["cfg_key_settings"].size(), 40u);
  const F9tConfig c = parse_f9t_config(default_request());
  EXPECT_EQ(c.device, "/dev/ttyACM1");
  EXPECT_EQ(c.uid, "DF03A241BC");
  EXPECT_EQ(c.apply_layers, 3);
  EXPECT_EQ(c.verify_layer, 0);
  EXPECT_EQ(c.settings.size(), 49u);
  const auto g = group_settings(c);
  EXPECT_EQ(g.signal.size(), 19u);
  ASSERT_EQ(g.other.size(), 30u);
  EXPECT_TRUE(g.other.front().key->name.starts_with("CFG_TMODE_"));
  EXPECT_TRUE(g.other[9].key->name.starts_with("CFG_TP_"));
  // TMODE (9), then every TP key (17, TP2 included), then MSGOUT (4).
  for (std::size_t i = 9; i < 26; ++i)
    EXPECT_TRUE(g.other[i].key->name.starts_with("CFG_TP_")) << i;
  for (std::size_t i = 26; i < 30; ++i)
    EXPECT_TRUE(g.other[i].key->name.starts_with("CFG_MSGOUT_")) << i;
  // CFG-TP-ANT_CABLEDELAY (u-blox spelling) resolved.
  bool cable = false;
  for (const auto& s : c.settings) cable |= s.key->name == "CFG_TP_ANT_CABLEDELAY";
  EXPECT_TRUE(cable);
}

TEST(Config, GroupOrderIsTmodeTpMsgoutOthers) {
  auto req = default_request();
  req["cfg_key_settings"] = {{{"key", "CFG_UART1_BAUDRATE"}, {"value", 115200}},
                             {{"key", "CFG_MSGOUT_UBX_TIM_TP_USB"}, {"value", 1}},
                             {{"key", "CFG_TP_TP1_ENA"}, {"value", 1}}};
  const auto g = group_settings(parse_f9t_config(req));
  ASSERT_EQ(g.other.size(), 12u);
  EXPECT_EQ(g.other[9].key->name, "CFG_TP_TP1_ENA");
  EXPECT_EQ(g.other[10].key->name, "CFG_MSGOUT_UBX_TIM_TP_USB");
  EXPECT_EQ(g.other[11].key->name, "CFG_UART1_BAUDRATE");
}

TEST(Config, LayerMasks) {
  EXPECT_EQ(layer_mask({"RAM"}), 1);
  EXPECT_EQ(layer_mask({"BBR"}), 2);
  EXPECT_EQ(layer_mask({"FLASH"}), 4);
  EXPECT_EQ(layer_mask({"ram", "Flash"}), 5);
  EXPECT_NE(failure_message([] { layer_mask({"EEPROM"}); }).find("unknown layer 'EEPROM'"),
            std::string::npos);
  EXPECT_NE(failure_message([] { layer_mask({}); }).find("INVALID_CONFIG"), std::string::npos);
  EXPECT_EQ(poll_layer("DEFAULT"), 7);
  EXPECT_EQ(poll_layer("bbr"), 1);
}

TEST(Config, LlhVectorMatchesUpstream) {
  const auto items = tmode_settings({37.4219999, -122.0840575, 12.345, 0.02});
  std::map<std::string, double> v;
  for (const auto& s : items) v[std::string(s.key->name)] = s.value;
  EXPECT_EQ(v["CFG_TMODE_MODE"], 2);
  EXPECT_EQ(v["CFG_TMODE_POS_TYPE"], 1);
  EXPECT_EQ(v["CFG_TMODE_LAT"], 374219999);
  EXPECT_EQ(v["CFG_TMODE_LAT_HP"], 0);
  EXPECT_EQ(v["CFG_TMODE_LON"], -1220840575);
  EXPECT_EQ(v["CFG_TMODE_LON_HP"], 0);
  EXPECT_EQ(v["CFG_TMODE_HEIGHT"], 1234);
  EXPECT_EQ(v["CFG_TMODE_HEIGHT_HP"], 50);
  EXPECT_EQ(v["CFG_TMODE_FIXED_POS_ACC"], 200);
  // Floor division for negatives: -1.23456789012 deg -> n = -1234567890
  // (rounded), LAT = -12345679, LAT_HP = 10 (Python: -1234567890 // 100, % 100).
  const auto neg = tmode_settings({-1.23456789012, 0, -0.0123, 0.05});
  std::map<std::string, double> w;
  for (const auto& s : neg) w[std::string(s.key->name)] = s.value;
  EXPECT_EQ(w["CFG_TMODE_LAT"], -12345679);
  EXPECT_EQ(w["CFG_TMODE_LAT_HP"], 10);
  EXPECT_EQ(w["CFG_TMODE_HEIGHT"], -2);     // -123 // 100
  EXPECT_EQ(w["CFG_TMODE_HEIGHT_HP"], 77);  // -123 % 100
  EXPECT_EQ(w["CFG_TMODE_FIXED_POS_ACC"], 500);
}

TEST(Config, InvalidConfigsGetClearMessages) {
  auto check = [](const std::function<void(nlohmann::json&)>& edit, const std::string& want) {
    auto req = default_request();
    edit(req);
    const std::string m = failure_message([&] { parse_f9t_config(req); });
    EXPECT_NE(m.find(want), std::string::npos) << m;
  };
  check([](auto& r) { r.erase("device"); }, "Device path not specified in config.");
  check([](auto& r) { r["device"] = ""; }, "Device path not specified in config.");
  check([](auto& r) { r["device"] = 5; }, "Device path must be a string.");
  check([](auto& r) { r["f9t_uid"] = "DF03"; },
        "INVALID_CONFIG: f9t_uid 'DF03' is not 10 hex digits");
  check([](auto& r) { r.erase("f9t_uid"); }, "INVALID_CONFIG: f9t_uid is missing");
  check([](auto& r) { r["apply_to_layers"] = {"RAM", "ROM"}; }, "unknown layer 'ROM'");
  check([](auto& r) { r["apply_to_layers"] = "RAM"; }, "apply_to_layers must be a list");
  check([](auto& r) { r["verify_layer"] = "DISK"; }, "verify_layer 'DISK' is unknown");
  check([](auto& r) { r["baud"] = 12345; }, "baud 12345 is not a supported rate");
  {
    // An unknown key name is INTERNAL (ublox.md §4 step 5), not INVALID_ARGUMENT.
    auto req = default_request();
    req["cfg_key_settings"][0]["key"] = "CFG_SIGNAL_WARP_ENA";
    const std::string m =
        failure_message([&] { parse_f9t_config(req); }, StatusCode::internal);
    EXPECT_NE(m.find("Initialization failed: cfg_key_settings[0]: unknown configuration key "
                     "'CFG_SIGNAL_WARP_ENA'"),
              std::string::npos)
        << m;
  }
  check([](auto& r) { r["cfg_key_settings"][0]["value"] = 2; },
        "cfg_key_settings[0] (CFG_SIGNAL_GPS_ENA): value 2.0 is out of range for type L");
  check(
      [](auto& r) {
        r["cfg_key_settings"][1] = {{"key", "CFG_TP_FREQ_TP1"}};
      },
      "cfg_key_settings[1] must be an object with \"key\" and \"value\"");
  check([](auto& r) { r["cfg_key_settings"][0]["value"] = "0xZZ"; },
        "is not a number or a \"0x...\" hex string");
  check([](auto& r) { r["position"]["format"] = "ECEF"; }, "ECEF is not implemented");
  check([](auto& r) { r["position"].erase("lat_deg"); }, "position has no 'lat_deg'");
  check([](auto& r) { r["position"]["lat_deg"] = 91; }, "lat_deg must lie in -90..90");
  check([](auto& r) { r = nlohmann::json::array(); }, "f9t_config must be an object");
}

TEST(Config, HexStringValuesAndDuplicates) {
  auto req = default_request();
  req["cfg_key_settings"] = {{{"key", "CFG_TP_FREQ_TP2"}, {"value", "0x10"}},
                             {{"key", "CFG_TP_TP2_ENA"}, {"value", 1}},
                             {{"key", "cfg-tp-freq_tp2"}, {"value", 20}}};
  req.erase("position");
  const auto c = parse_f9t_config(req);
  ASSERT_EQ(c.settings.size(), 2u);
  EXPECT_EQ(c.settings[0].key->name, "CFG_TP_FREQ_TP2");
  EXPECT_EQ(c.settings[0].value, 20);
  EXPECT_EQ(format_value(c.settings[0].key->type, c.settings[0].raw), "20");
}

TEST(Config, ChipSelection) {
  const auto file = parse_json5(default_f9t_config_json5());
  const auto byuid = chip_request_config(file, 0, "DF03A241BC");
  EXPECT_FALSE(byuid.contains("f9t_chips"));
  EXPECT_EQ(byuid["device"], "/dev/ttyACM1");
  EXPECT_EQ(byuid["baud"], 115200);
  EXPECT_THROW(chip_request_config(file, 3), SetupError);
  EXPECT_THROW(chip_request_config(file, 0, "0000000000"), SetupError);
  // Found by fuzz_json5: a chip whose f9t_uid is not a string made the
  // selection by uid throw a JSON type error instead of skipping the chip.
  const auto odd = parse_json5(
      "{f9t_chips: [{f9t_uid: 5, device: '/dev/a'}, {f9t_uid: 'DF03A241BC', device: '/dev/b'}]}");
  EXPECT_EQ(chip_request_config(odd, 0, "DF03A241BC")["device"], "/dev/b");
  EXPECT_THROW(chip_request_config(odd, 0, "0000000005"), SetupError);
}

}  // namespace
}  // namespace acheron::gnss
