// xos framing and messages: every sender variant of dcss-xos.md §2, split
// reads, size guards, typed stoh_ parsing and exact htos_ encoding.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <variant>

#include "acheron/wire/Xos.hh"

namespace acheron::wire::xos {
namespace {

std::string v1(std::string_view text, char pad = '\0') {
  std::string f(text);
  f += '\0';
  f.resize(kV1FrameSize, pad);
  return f;
}

Frame decode_ok(std::string_view bytes) {
  auto r = decode_one(bytes);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : Frame{};
}

TEST(Xos, V1FrameWithNulOrGarbagePadding) {
  auto f = decode_ok(v1("stoc_send_client_type"));
  EXPECT_EQ(f.protocol, Protocol::v1);
  EXPECT_EQ(f.text, "stoc_send_client_type");
  f = decode_ok(v1("stoh_register_operation getLoopTip getLoopTip\n", 'x'));
  EXPECT_EQ(f.text, "stoh_register_operation getLoopTip getLoopTip");
}

TEST(Xos, EverySenderVariantDecodesToTheSameText) {
  const std::string text = "stoh_start_operation getLoopTip 1.7 1";
  for (auto v : {SenderVariant::xos_c, SenderVariant::mx, SenderVariant::pydhsfw,
                 SenderVariant::tcl, SenderVariant::java}) {
    const auto bytes = encode_v2_as(v, text);
    auto f = decode_ok(bytes);
    EXPECT_EQ(f.protocol, Protocol::v2) << static_cast<int>(v);
    EXPECT_EQ(f.text, text) << static_cast<int>(v);
  }
}

TEST(Xos, ExactSenderHeaders) {
  EXPECT_EQ(encode_v2_as(SenderVariant::xos_c, "ab"),
            std::string("           3            0 ab\0", 29));
  EXPECT_EQ(encode_v2_as(SenderVariant::mx, "ab"),
            std::string("           3            0\0ab\0", 29));
  EXPECT_EQ(encode_v2_as(SenderVariant::pydhsfw, "ab"),
            std::string("           4            0 ab \0", 30));
  EXPECT_EQ(encode_v2_as(SenderVariant::tcl, "ab"),
            std::string("           2            0 ab", 28));
  EXPECT_EQ(encode_v2_as(SenderVariant::java, "ab"),
            std::string("2 0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0ab", 28));
}

TEST(Xos, RegistrationWithNewlineAndTps07aLength) {
  // TPS07A capture: text length 46 for the string registration, "\n" + NUL counted.
  const std::string text = "stoh_register_string tps_current tps_current\n";
  char hdr[27];
  std::snprintf(hdr, sizeof hdr, "%12zu %12d ", text.size() + 1, 0);
  EXPECT_EQ(text.size() + 1, 46u);
  std::string frame = std::string(hdr) + text + '\0';
  auto f = decode_ok(frame);
  EXPECT_EQ(f.text, "stoh_register_string tps_current tps_current");
}

TEST(Xos, PerMessageAutoDetectionOnOneStream) {
  StreamDecoder d;
  std::string stream = v1("stoc_send_client_type") + encode_v2("stoh_abort_all soft") +
                       v1("stoh_register_shutter shutter closed\n") +
                       encode_v2_as(SenderVariant::java, "stoh_set_string s a b");
  d.feed(stream);
  std::vector<Frame> frames;
  while (true) {
    auto r = d.next();
    ASSERT_TRUE(r.ok());
    if (!*r) break;
    frames.push_back(**r);
  }
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0].protocol, Protocol::v1);
  EXPECT_EQ(frames[1].protocol, Protocol::v2);
  EXPECT_EQ(frames[1].text, "stoh_abort_all soft");
  EXPECT_EQ(frames[2].protocol, Protocol::v1);
  EXPECT_EQ(frames[3].text, "stoh_set_string s a b");
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(Xos, SplitReadsByteByByte) {
  const std::string stream = encode_v2("stoh_start_motor_move m 1.5") + v1("stoh_abort_all") +
                             encode_v2_as(SenderVariant::mx, "stoh_get_encoder e");
  StreamDecoder d;
  std::vector<std::string> texts;
  for (char c : stream) {
    d.feed(&c, 1);
    while (true) {
      auto r = d.next();
      ASSERT_TRUE(r.ok());
      if (!*r) break;
      texts.push_back((*r)->text);
    }
  }
  ASSERT_EQ(texts.size(), 3u);
  EXPECT_EQ(texts[0], "stoh_start_motor_move m 1.5");
  EXPECT_EQ(texts[1], "stoh_abort_all");
  EXPECT_EQ(texts[2], "stoh_get_encoder e");
}

TEST(Xos, BinaryIsSkippedEvenWhenSplit) {
  char hdr[27];
  std::snprintf(hdr, sizeof hdr, "%12d %12d ", 6, 10);
  std::string bytes = std::string(hdr) + "hello" + '\0' + std::string(10, 'B');
  bytes += encode_v2("stoh_abort_all");
  StreamDecoder d;
  d.feed(bytes.substr(0, 35));
  auto r = d.next();
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  d.feed(bytes.substr(35));
  r = d.next();
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->text, "hello");
  EXPECT_EQ((*r)->binary_size, 10u);
  r = d.next();
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->text, "stoh_abort_all");
}

TEST(Xos, BadHeadersAreStickyErrors) {
  for (std::string h :
       {"          -5            0 ", "          12           xx ", "   999999999            0 ",
        "1 2 3                     ", "12abc                     "}) {
    StreamDecoder d(Limits{.max_text = 1 << 20, .max_binary = 1 << 20});
    h.resize(kV2HeaderSize, ' ');
    d.feed(h + std::string(300, 'x'));
    auto r = d.next();
    // "-5" starts with '-', not a digit: that header is read as a 200-byte xos1 frame.
    if (h[10] == '-') {
      ASSERT_TRUE(r.ok());
      continue;
    }
    EXPECT_FALSE(r.ok()) << h;
    EXPECT_TRUE(d.failed());
    EXPECT_FALSE(d.next().ok());
  }
  // Binary above its limit.
  StreamDecoder d(Limits{.max_text = 100, .max_binary = 100});
  d.feed("           5          101 ");
  EXPECT_FALSE(d.next().ok());
}

TEST(Xos, MissingBinarySizeIsZero) {
  auto h = parse_v2_header(std::string("17\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 26));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->text_size, 17u);
  EXPECT_EQ(h->binary_size, 0u);
}

TEST(Xos, EncodeIsExact) {
  auto e = encode_v1("  htos_client_is_hardware   loopDHS \n");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->size(), 200u);
  EXPECT_EQ(e->substr(0, 32), std::string("htos_client_is_hardware loopDHS\0", 32));
  EXPECT_FALSE(encode_v1(std::string(200, 'a')).ok());
  EXPECT_TRUE(encode_v1(std::string(199, 'a')).ok());
  const auto v2 = encode_v2("htos_note hi\nthere");
  EXPECT_EQ(v2, std::string("          19            0 htos_note hi there\0", 45));
}

TEST(Xos, LongTextIsCutToWholeTokensForXos1) {
  // Fits: unchanged (normalized).
  auto fit = fit_v1("htos_note  short\n");
  EXPECT_EQ(fit.text, "htos_note short");
  EXPECT_FALSE(fit.truncated);
  fit = fit_v1(std::string(199, 'a'));
  EXPECT_FALSE(fit.truncated);
  EXPECT_EQ(fit.text.size(), 199u);
  // A completion with 40 results of 8 bytes: cut after the last whole result.
  std::string text = "htos_operation_completed getResults 1.7 normal";
  for (int i = 0; i < 40; ++i) text += " " + format_loop(0.1 + i / 100.0);
  fit = fit_v1(text);
  EXPECT_TRUE(fit.truncated);
  EXPECT_EQ(fit.original_size, text.size());
  EXPECT_LE(fit.text.size(), 199u);
  EXPECT_TRUE(text.starts_with(fit.text + " "));
  const auto tokens = tokenize(fit.text);
  EXPECT_EQ(tokens[3], "normal");
  for (std::size_t i = 4; i < tokens.size(); ++i) EXPECT_EQ(tokens[i].size(), 7u) << tokens[i];
  EXPECT_EQ(tokens.size(), 4u + (199u - 46u) / 8u);  // every result that fits, whole
  auto frame = encode_v1(fit.text);
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(decode_one(*frame)->text, fit.text);
  // One token longer than a frame: cut at 199 bytes.
  fit = fit_v1(std::string(300, 'x'));
  EXPECT_TRUE(fit.truncated);
  EXPECT_EQ(fit.text, std::string(199, 'x'));
  fit = fit_v1("htos_note " + std::string(300, 'y'));
  EXPECT_EQ(fit.text, "htos_note");
}

TEST(Xos, Numbers) {
  EXPECT_EQ(format_motor(119.0), "119.000000");
  EXPECT_EQ(format_loop(0.5176849), "0.51768");
  EXPECT_EQ(htos::motor_move_completed("gonio_phi", 1.5, "normal"),
            "htos_motor_move_completed gonio_phi 1.500000 normal");
}

TEST(Xos, HtosMessages) {
  ConfigureRealMotor m;
  m.name = "gonio_phi";
  m.position = 119;
  m.upper_limit = 1000;
  m.lower_limit = -1000;
  m.scale_factor = 2500;
  m.speed = 325000;
  m.acceleration = 50;
  m.backlash = 625;
  EXPECT_EQ(htos::configure_real_motor(m),
            "htos_configure_device gonio_phi 119.000000 1000.000000 -1000.000000 2500.000000 "
            "325000 50 625 0 0 0 0 0");
  EXPECT_EQ(htos::operation_completed("getLoopTip", "1.2", "normal", "0.5 0.25"),
            "htos_operation_completed getLoopTip 1.2 normal 0.5 0.25");
  EXPECT_EQ(htos::operation_completed("x", "1.2", "normal"),
            "htos_operation_completed x 1.2 normal");
  EXPECT_EQ(htos::report_shutter_state("s", false), "htos_report_shutter_state s closed");
  EXPECT_EQ(htos::report_ion_chambers(1.0, {{"i0", 100}, {"i1", 50}}),
            "htos_report_ion_chambers 1.000000 i0 100.000000 i1 50.000000");
  EXPECT_EQ(htos::set_string_completed("s", "normal", "a b"),
            "htos_set_string_completed s normal a b");
}

template <class T>
T parse_as(std::string_view text) {
  auto r = parse_stoh(text);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message);
  if (!r.ok()) return T{};
  EXPECT_TRUE(std::holds_alternative<T>(*r)) << text;
  return std::holds_alternative<T>(*r) ? std::get<T>(*r) : T{};
}

TEST(Xos, ParseEveryStohMessage) {
  parse_as<SendClientType>("stoc_send_client_type");
  auto reg = parse_as<Register>("stoh_register_real_motor gonio_phi phi");
  EXPECT_EQ(reg.type, DeviceType::real_motor);
  EXPECT_EQ(reg.hw_name, "phi");
  EXPECT_EQ(parse_as<Register>("stoh_register_pseudo_motor energy energy").type,
            DeviceType::pseudo_motor);
  reg = parse_as<Register>("stoh_register_shutter shutter closed");
  EXPECT_EQ(reg.shutter_state, "closed");
  EXPECT_EQ(reg.hw_name, "shutter");
  reg = parse_as<Register>("stoh_register_ion_chamber i0 hw_i0 3 timer1 clock");
  EXPECT_EQ(reg.counter_channel, "3");
  EXPECT_EQ(reg.timer_type, "clock");
  for (auto t : {"encoder", "string", "operation", "object"}) {
    reg = parse_as<Register>(std::string("stoh_register_") + t + " n n");
    EXPECT_EQ(to_string(reg.type), t);
  }
  auto rel = parse_as<MotorRelations>("stoh_set_motor_children energy mono_theta mono_bend");
  EXPECT_TRUE(rel.children);
  EXPECT_EQ(rel.others.size(), 2u);
  EXPECT_FALSE(parse_as<MotorRelations>("stoh_set_motor_dependency a b").children);
  auto rm = parse_as<ConfigureRealMotor>(
      "stoh_configure_real_motor gonio_phi EPICS gonio_phi 119.000000 1000.000000 -1000.000000 "
      "2500.000000 325000 50 625 0 0 0 0 0 0");
  EXPECT_DOUBLE_EQ(rm.position, 119);
  EXPECT_DOUBLE_EQ(rm.scale_factor, 2500);
  EXPECT_EQ(rm.speed, 325000);
  EXPECT_EQ(rm.backlash, 625);
  auto pm = parse_as<ConfigurePseudoMotor>(
      "stoh_configure_pseudo_motor energy host energy 12000 20000 5000 1 1 0 0");
  EXPECT_DOUBLE_EQ(pm.lower_limit, 5000);
  EXPECT_EQ(pm.upper_limit_on, 1);
  auto co = parse_as<ConfigureOther>("stoh_configure_string s host hello world");
  EXPECT_EQ(co.type, DeviceType::string);
  EXPECT_EQ(co.fields.size(), 2u);
  EXPECT_DOUBLE_EQ(parse_as<StartMotorMove>("stoh_start_motor_move m -2.5").destination, -2.5);
  EXPECT_EQ(parse_as<AbortMotorMove>("stoh_abort_motor_move m soft").mode, AbortMode::soft);
  EXPECT_EQ(parse_as<AbortMotorMove>("stoh_abort_motor_move m").mode, AbortMode::hard);
  EXPECT_DOUBLE_EQ(parse_as<SetMotorPosition>("stoh_set_motor_position m 3").position, 3);
  EXPECT_DOUBLE_EQ(parse_as<CorrectMotorPosition>("stoh_correct_motor_position m 360").correction,
                   360);
  auto osc = parse_as<StartOscillation>("stoh_start_oscillation phi NULL 180 3 x");
  EXPECT_TRUE(osc.shutter.empty());
  EXPECT_EQ(osc.extra.size(), 1u);
  EXPECT_DOUBLE_EQ(parse_as<StartVectorMove>("stoh_start_vector_move a b 1 2 3").speed, 3);
  EXPECT_EQ(parse_as<StopVectorMove>("stoh_stop_vector_move a b").motor2, "b");
  EXPECT_DOUBLE_EQ(parse_as<ChangeVectorSpeed>("stoh_change_vector_speed a b 4").speed, 4);
  EXPECT_TRUE(parse_as<SetShutterState>("stoh_set_shutter_state s open").open);
  auto ic = parse_as<ReadIonChambers>("stoh_read_ion_chambers 0.5 0 i0 i1");
  EXPECT_EQ(ic.channels.size(), 2u);
  EXPECT_EQ(parse_as<GetEncoder>("stoh_get_encoder e").name, "e");
  EXPECT_DOUBLE_EQ(parse_as<SetEncoder>("stoh_set_encoder e 2").position, 2);
  EXPECT_EQ(parse_as<SetString>("stoh_set_string s a   b c").contents, "a b c");
  auto so =
      parse_as<StartOperation>("stoh_start_operation reboxLoopImage 1.4 43 0.517685 0.563561");
  EXPECT_EQ(so.handle, "1.4");
  EXPECT_EQ(so.args.size(), 3u);
  EXPECT_EQ(parse_as<StopOperation>("stoh_stop_operation collectLoopImages").handle, "");
  EXPECT_EQ(parse_as<StopOperation>("stoh_stop_operation op 1.2").handle, "1.2");
  EXPECT_EQ(parse_as<AbortAll>("stoh_abort_all").mode, AbortMode::hard);
  EXPECT_EQ(parse_as<AbortAll>("stoh_abort_all soft").mode, AbortMode::soft);
  EXPECT_EQ(parse_as<AbortAll>("stoh_abort_all gentle").mode, AbortMode::hard);
  EXPECT_EQ(parse_as<Unknown>("stoh_frobnicate x").tokens.size(), 2u);
  EXPECT_EQ(parse_as<Unknown>("stoh_register_widget x").tokens.size(), 2u);
}

TEST(Xos, MalformedKnownMessagesAreErrors) {
  for (auto t : {"stoh_start_motor_move m", "stoh_start_motor_move m abc",
                 "stoh_configure_real_motor a b c 1 2", "stoh_start_operation op",
                 "stoh_set_shutter_state s ajar", "stoh_read_ion_chambers 1", "",
                 "stoh_start_motor_move m nan", "stoh_start_motor_move m 1e999"}) {
    EXPECT_FALSE(parse_stoh(t).ok()) << t;
  }
}

}  // namespace
}  // namespace acheron::wire::xos
