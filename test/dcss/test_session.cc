// A DHS Session against the fake DCSS on loopback: the handshake in both
// protocol levels and every sender variant, the registration burst, message
// round trips, reconnects, rejections and faults (dcss-xos.md §3, §6, §10).
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <future>
#include <thread>

#include "TestWait.hh"
#include "acheron/dcss/Dhs.hh"
#include "acheron/dcss/FakeDcss.hh"
#include "acheron/dcss/Session.hh"
#include "acheron/dcss/Socket.hh"

namespace acheron::dcss {
namespace {

using namespace std::chrono_literals;
namespace xos = wire::xos;

FakeDcssOptions fake_options(xos::Protocol level,
                             xos::SenderVariant variant = xos::SenderVariant::xos_c) {
  FakeDcssOptions o;
  o.rows = {{"simDHS", "127.0.0.1", level}};
  o.variant = variant;
  o.host_reject_delay = 100ms;
  o.duplicate_reject_delay = 100ms;
  o.devices = {
      FakeDevice::real_motor("gonio_phi", "simDHS", 119, 1000, -1000, 2500, 325000, 625),
      FakeDevice::pseudo_motor("energy", "simDHS", 12000, 20000, 5000),
      FakeDevice::shutter("video_trigger", "simDHS", false),
      FakeDevice::ion_chamber("i0", "simDHS", "3"),
      FakeDevice::encoder("enc", "simDHS", 1.5),
      FakeDevice::string("note", "simDHS", "hello world"),
      FakeDevice::operation("echo", "simDHS"),
      FakeDevice::operation("never", "simDHS"),
      FakeDevice::object("thing", "simDHS"),
      FakeDevice::real_motor("other_motor", "otherDHS"),
  };
  o.devices[1].children = {"mono_theta"};
  o.devices[0].dependencies = {"gonio_kappa"};
  return o;
}

SessionOptions session_options(std::uint16_t port) {
  SessionOptions s;
  s.port = port;
  s.reconnect_min = 50ms;
  s.reconnect_max = 300ms;
  return s;
}

DhsOptions dhs_options() {
  DhsOptions o;
  o.name = "simDHS";
  o.motor_tick = 20ms;
  return o;
}

using test_support::eventually;

void add_echo(Dhs& dhs) {
  dhs.add_operation("echo", [](const OperationPtr& op) {
    op->update("got " + xos::join(op->args()));
    op->complete("normal", xos::join(op->args()));
  });
}

class Levels
    : public ::testing::TestWithParam<std::tuple<xos::Protocol, xos::SenderVariant, bool>> {};

TEST_P(Levels, HandshakeBurstAndOperation) {
  const auto [level, variant, v2_prompt] = GetParam();
  auto fo = fake_options(level, variant);
  fo.v2_prompt = v2_prompt;
  FakeDcss dcss(fo);
  dcss.start();
  Dhs dhs(dhs_options());
  add_echo(dhs);
  Session session(session_options(dcss.port()), dhs);
  session.start();
  ASSERT_TRUE(dcss.wait_online("simDHS", 5s));
  // The burst: motor configuration requested and answered.
  ASSERT_TRUE(dcss.wait_for(
      [](const auto& rs) {
        int n = 0;
        for (const auto& r : rs) n += r.tokens[0] == "htos_send_configuration";
        return n == 2;
      },
      5s));
  const auto h = dcss.start_operation("simDHS", "echo", {"a", "b"});
  auto op = dcss.wait_completion(h, 5s);
  ASSERT_TRUE(op);
  EXPECT_EQ(op->status, "normal");
  EXPECT_EQ(op->result, "a b");
  EXPECT_EQ(op->updates, std::vector<std::string>{"got a b"});
  // protocol = auto answers in the framing DCSS uses.
  for (const auto& r : dcss.records()) EXPECT_EQ(r.protocol, level) << r.text;
  auto m = dhs.motor("gonio_phi");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->configured);
  EXPECT_DOUBLE_EQ(m->position, 119);
  EXPECT_EQ(dhs.shutter_open("video_trigger"), false);
  EXPECT_EQ(dhs.string_contents("note"), "");
  EXPECT_FALSE(dhs.motor("other_motor"));  // another DHS's device
  EXPECT_TRUE(dcss.violations().empty()) << dcss.violations().front();
  session.stop();
}

INSTANTIATE_TEST_SUITE_P(
    Dcss, Levels,
    ::testing::Values(std::make_tuple(xos::Protocol::v1, xos::SenderVariant::xos_c, false),
                      std::make_tuple(xos::Protocol::v2, xos::SenderVariant::xos_c, false),
                      std::make_tuple(xos::Protocol::v2, xos::SenderVariant::mx, true),
                      std::make_tuple(xos::Protocol::v2, xos::SenderVariant::pydhsfw, false),
                      std::make_tuple(xos::Protocol::v2, xos::SenderVariant::tcl, false),
                      std::make_tuple(xos::Protocol::v2, xos::SenderVariant::java, true)));

TEST(SessionFraming, LongTextReachesAnXos1DcssInWholeTokens) {
  // An operation whose update and completion are longer than a 200-byte frame.
  std::string results;
  for (int i = 0; i < 40; ++i) results += (i ? " " : "") + xos::format_loop(i / 100.0);
  for (const auto level : {xos::Protocol::v1, xos::Protocol::v2}) {
    SCOPED_TRACE(std::string(xos::to_string(level)));
    FakeDcss dcss(fake_options(level));
    dcss.start();
    Dhs dhs(dhs_options());
    add_echo(dhs);
    dhs.add_operation("long", [&](const OperationPtr& op) {
      op->update("partial " + results);
      op->complete("normal", results);
    });
    Session session(session_options(dcss.port()), dhs);
    session.start();
    ASSERT_TRUE(dcss.wait_online("simDHS", 5s));
    const auto h = dcss.start_operation("simDHS", "long");
    auto op = dcss.wait_completion(h, 5s);
    ASSERT_TRUE(op);
    EXPECT_EQ(op->status, "normal");
    ASSERT_EQ(op->updates.size(), 1u);
    const auto completed = xos::htos::operation_completed("long", h, "normal", results);
    const auto updated = xos::htos::operation_update("long", h, "partial " + results);
    if (level == xos::Protocol::v1) {
      // What DCSS can read: the first 199 bytes, cut after a whole number.
      EXPECT_EQ(dcss.records_of("htos_operation_completed").back().text,
                xos::fit_v1(completed).text);
      EXPECT_EQ(dcss.records_of("htos_operation_update").back().text, xos::fit_v1(updated).text);
      EXPECT_TRUE(results.starts_with(op->result + " ")) << op->result;
      EXPECT_EQ(session.truncated_messages(), 2u);
    } else {
      EXPECT_EQ(op->result, results);  // xos2 carries it whole
      EXPECT_EQ(dcss.records_of("htos_operation_completed").back().text, completed);
      EXPECT_EQ(session.truncated_messages(), 0u);
    }
    // The stream stays in step: the next operation is read correctly.
    const auto h2 = dcss.start_operation("simDHS", "echo", {"after"});
    auto op2 = dcss.wait_completion(h2, 5s);
    ASSERT_TRUE(op2);
    EXPECT_EQ(op2->result, "after");
    for (const auto& r : dcss.records()) EXPECT_EQ(r.protocol, level) << r.text;
    EXPECT_TRUE(dcss.violations().empty()) << dcss.violations().front();
    session.stop();
  }
}

struct Online : ::testing::Test {
  Online() : dcss(fake_options(xos::Protocol::v2)), dhs(dhs_options()) {
    dcss.start();
    add_echo(dhs);
    session = std::make_unique<Session>(session_options(dcss.port()), dhs);
    session->start();
    EXPECT_TRUE(dcss.wait_online("simDHS", 5s));
    EXPECT_TRUE(dcss.wait_for([](const auto& rs) { return rs.size() >= 3; }, 5s));
  }
  ~Online() override { session->stop(); }
  FakeDcss dcss;
  Dhs dhs;
  std::unique_ptr<Session> session;
};

TEST_F(Online, EveryMessageTypeRoundTrips) {
  auto wait_cmd = [&](const std::string& cmd, std::size_t n = 1) {
    return dcss.wait_for(
        [&](const auto& rs) {
          std::size_t k = 0;
          for (const auto& r : rs) k += r.tokens[0] == cmd;
          return k >= n;
        },
        5s);
  };
  dcss.send("simDHS", "stoh_start_motor_move gonio_phi 120");
  ASSERT_TRUE(wait_cmd("htos_motor_move_completed"));
  EXPECT_DOUBLE_EQ(*dcss.motor_position("gonio_phi"), 120);
  dcss.send("simDHS", "stoh_set_shutter_state video_trigger open");
  ASSERT_TRUE(wait_cmd("htos_report_shutter_state", 2));
  EXPECT_EQ(dcss.shutter_open("video_trigger"), true);
  dcss.send("simDHS", "stoh_read_ion_chambers 0.05 0 i0");
  ASSERT_TRUE(wait_cmd("htos_report_ion_chambers"));
  dcss.send("simDHS", "stoh_get_encoder enc");
  ASSERT_TRUE(wait_cmd("htos_get_encoder_completed"));
  EXPECT_EQ(dcss.records_of("htos_get_encoder_completed")[0].text,
            "htos_get_encoder_completed enc 0.000000 normal");
  dcss.send("simDHS", "stoh_set_encoder enc 3");
  ASSERT_TRUE(wait_cmd("htos_set_encoder_completed"));
  dcss.send("simDHS", "stoh_set_string note a b  c");
  ASSERT_TRUE(wait_cmd("htos_set_string_completed"));
  EXPECT_EQ(dcss.string_value("note"), "a b c");
  dcss.send("simDHS", "stoh_start_oscillation gonio_phi video_trigger 1 0.1");
  ASSERT_TRUE(wait_cmd("htos_motor_move_completed", 2));
  dcss.send("simDHS", "stoh_set_motor_position gonio_phi 5");
  dcss.send("simDHS", "stoh_correct_motor_position gonio_phi 360");
  dcss.send("simDHS", "stoh_start_vector_move gonio_phi energy 366 12001 100");
  ASSERT_TRUE(wait_cmd("htos_motor_move_completed", 4));
  EXPECT_DOUBLE_EQ(dhs.motor("gonio_phi")->position, 366);
  dcss.send("simDHS", "stoh_unheard_of_message 1 2");
  const auto h = dcss.start_operation("simDHS", "never");
  auto op = dcss.wait_completion(h, 5s);
  ASSERT_TRUE(op);
  EXPECT_EQ(op->status, "error");
  EXPECT_EQ(op->result, "not_implemented");
  EXPECT_TRUE(dcss.violations().empty()) << dcss.violations().front();
}

// Counts records of `command` (for wait_for predicates, which must only look
// at the records they are given).
std::size_t count_of(const std::vector<FakeDcss::Record>& rs, const std::string& command,
                     const std::string& last_token = {}) {
  std::size_t n = 0;
  for (const auto& r : rs) {
    n += r.tokens[0] == command && (last_token.empty() || r.tokens.back() == last_token);
  }
  return n;
}

// Records of motor updates and completions that name `motor`.
std::size_t motor_records(const std::vector<FakeDcss::Record>& rs, const std::string& motor) {
  std::size_t n = 0;
  for (const auto& r : rs) {
    n += (r.tokens[0] == "htos_update_motor_position" ||
          r.tokens[0] == "htos_motor_move_completed") &&
         r.tokens.size() > 1 && r.tokens[1] == motor;
  }
  return n;
}

void add_waiter(Dhs& dhs) {
  // Completes `stopped` on stoh_stop_operation; aborts complete it themselves.
  dhs.add_operation("wait", [](const OperationPtr& op) {
    op->wait_cancelled(10s);
    if (op->stop_requested()) op->complete("normal", "stopped");
  });
}

TEST_F(Online, TheRemainingMessageTypesRoundTrip) {
  add_waiter(dhs);
  // stoh_abort_motor_move during a move.
  dcss.send("simDHS", "stoh_start_motor_move gonio_phi 900");  // 6 s at 130 units/s
  ASSERT_TRUE(dcss.wait_for(
      [](const auto& rs) { return count_of(rs, "htos_update_motor_position") >= 2; }, 5s));
  dcss.send("simDHS", "stoh_abort_motor_move gonio_phi soft");
  ASSERT_TRUE(dcss.wait_for(
      [](const auto& rs) { return count_of(rs, "htos_motor_move_completed", "aborted") == 1; },
      2s));
  const double stopped_at = *dcss.motor_position("gonio_phi");
  EXPECT_GT(stopped_at, 119);
  EXPECT_LT(stopped_at, 900);
  // stoh_change_vector_speed and stoh_stop_vector_move.
  dcss.send("simDHS", "stoh_start_vector_move gonio_phi energy 800 12001 10");
  ASSERT_TRUE(dcss.wait_for(
      [](const auto& rs) { return count_of(rs, "htos_motor_move_started") >= 3; }, 5s));
  const std::size_t updates = dcss.records_of("htos_update_motor_position").size();
  dcss.send("simDHS", "stoh_change_vector_speed gonio_phi energy 20");
  // The move goes on at the new speed for a few ticks before it is stopped.
  ASSERT_TRUE(dcss.wait_for(
      [&](const auto& rs) { return count_of(rs, "htos_update_motor_position") >= updates + 4; },
      5s));
  dcss.send("simDHS", "stoh_stop_vector_move gonio_phi energy");
  ASSERT_TRUE(dcss.wait_for(
      [](const auto& rs) { return count_of(rs, "htos_motor_move_completed", "aborted") == 3; },
      2s));
  EXPECT_FALSE(dhs.motor("gonio_phi")->moving);
  EXPECT_FALSE(dhs.motor("energy")->moving);
  // stoh_configure_<type> of the other device types.
  dcss.send("simDHS", "stoh_configure_shutter video_trigger simDHS open");
  dcss.send("simDHS", "stoh_configure_encoder enc simDHS 2.5 2.5");
  dcss.send("simDHS", "stoh_configure_string note simDHS new  contents");
  // A configuration is not a registration: devices this DHS never
  // registered stay unknown.
  dcss.send("simDHS", "stoh_configure_shutter ghost_shutter simDHS open");
  dcss.send("simDHS", "stoh_configure_encoder ghost_encoder simDHS 1.0 1.0");
  dcss.send("simDHS", "stoh_configure_string ghost_string simDHS text");
  dcss.send("simDHS", "stoh_get_encoder enc");
  ASSERT_TRUE(dcss.wait_for(
      [](const auto& rs) { return count_of(rs, "htos_get_encoder_completed") == 1; }, 5s));
  EXPECT_EQ(dcss.records_of("htos_get_encoder_completed")[0].text,
            "htos_get_encoder_completed enc 2.500000 normal");
  EXPECT_EQ(dhs.shutter_open("video_trigger"), true);
  EXPECT_EQ(dhs.string_contents("note"), "new contents");
  EXPECT_EQ(dhs.shutter_open("ghost_shutter"), std::nullopt);
  EXPECT_EQ(dhs.encoder_position("ghost_encoder"), std::nullopt);
  EXPECT_EQ(dhs.string_contents("ghost_string"), std::nullopt);
  // stoh_stop_operation and a bare stoh_abort_all.
  auto h = dcss.start_operation("simDHS", "wait");
  ASSERT_TRUE(eventually([&] { return dhs.active_operations() == 1; }, 5s));
  dcss.stop_operation("simDHS", "wait", h);
  auto op = dcss.wait_completion(h, 5s);
  ASSERT_TRUE(op);
  EXPECT_EQ(op->status + " " + op->result, "normal stopped");
  h = dcss.start_operation("simDHS", "wait");
  ASSERT_TRUE(eventually([&] { return dhs.active_operations() == 1; }, 5s));
  dcss.abort_all("");
  op = dcss.wait_completion(h, 2s);
  ASSERT_TRUE(op);
  EXPECT_EQ(op->status, "aborted");
  // DHS → DCSS messages a handler or a device sends on its own.
  dhs.send(xos::htos::note("oscillation_too_slow gonio_phi"));
  dhs.send(xos::htos::log("warning", "simDHS", "beam  is\nlow"));
  dhs.send(xos::htos::simulating_device("gonio_phi"));
  dhs.send(xos::htos::limit_hit("gonio_phi"));
  ASSERT_TRUE(
      dcss.wait_for([](const auto& rs) { return count_of(rs, "htos_limit_hit") == 1; }, 5s));
  EXPECT_EQ(dcss.records_of("htos_note")[0].text, "htos_note oscillation_too_slow gonio_phi");
  EXPECT_EQ(dcss.records_of("htos_log")[0].text, "htos_log warning simDHS beam is low");
  EXPECT_EQ(dcss.records_of("htos_simulating_device")[0].text, "htos_simulating_device gonio_phi");
  EXPECT_TRUE(dcss.violations().empty()) << dcss.violations().front();
}

TEST_F(Online, AbortAllDuringAMotorMoveAndAnOperation) {
  add_waiter(dhs);
  dcss.send("simDHS", "stoh_start_motor_move gonio_phi 1000");
  ASSERT_TRUE(dcss.wait_for(
      [](const auto& rs) { return count_of(rs, "htos_update_motor_position") >= 1; }, 5s));
  const auto h = dcss.start_operation("simDHS", "wait");
  ASSERT_TRUE(eventually([&] { return dhs.active_operations() == 1; }, 5s));
  const auto t0 = Clock::now();
  dcss.abort_all("hard");
  auto op = dcss.wait_completion(h, 2s);
  ASSERT_TRUE(op);
  EXPECT_EQ(op->status, "aborted");
  ASSERT_TRUE(dcss.wait_for(
      [](const auto& rs) { return count_of(rs, "htos_motor_move_completed", "aborted") == 1; },
      2s));
  EXPECT_LT(Clock::now() - t0, 2s);  // bounded (§5)
  const double pos = *dcss.motor_position("gonio_phi");
  EXPECT_GT(pos, 119);
  EXPECT_LT(pos, 1000);
  EXPECT_FALSE(dhs.motor("gonio_phi")->moving);
  EXPECT_EQ(dhs.active_operations(), 0u);
  // Nothing more: no second completion, no late updates. The motor ticker
  // moves the pseudo motor "energy" in one tick; three moves one after the
  // other take three more ticks, and the DHS sends in order, so whatever
  // the ticker or the operation still had to say about gonio_phi is
  // recorded before the third move's completion.
  const std::size_t gonio_before = motor_records(dcss.records(), "gonio_phi");
  for (std::size_t i = 1; i <= 3; ++i) {
    dcss.send("simDHS", "stoh_start_motor_move energy " + std::to_string(12000 + 100 * i));
    ASSERT_TRUE(dcss.wait_for(
        [&](const auto& rs) { return count_of(rs, "htos_motor_move_completed", "normal") == i; },
        5s));
  }
  EXPECT_EQ(motor_records(dcss.records(), "gonio_phi"), gonio_before);
  EXPECT_EQ(dcss.operation(h)->completions, 1);
  EXPECT_TRUE(dcss.violations().empty()) << dcss.violations().front();
  // The DHS still serves.
  dcss.send("simDHS", "stoh_start_motor_move gonio_phi 130");
  ASSERT_TRUE(dcss.wait_for(
      [](const auto& rs) { return count_of(rs, "htos_motor_move_completed", "normal") == 4; }, 5s));
  EXPECT_DOUBLE_EQ(*dcss.motor_position("gonio_phi"), 130);
}

TEST_F(Online, DcssDropsInTheMiddleOfAFrame) {
  // Half of an xos2 frame, then the connection goes: the DHS reconnects and
  // the partial message is never acted upon.
  // (TCP delivers the bytes before the close: the DHS reads the half frame,
  // then the end of the stream.)
  const auto frame = xos::encode_v2("stoh_start_motor_move gonio_phi 500");
  ASSERT_TRUE(dcss.send_raw("simDHS", frame.substr(0, 40)));
  dcss.drop("simDHS");
  ASSERT_TRUE(dcss.wait_online("simDHS", 5s, 2));
  const auto h = dcss.start_operation("simDHS", "echo", {"again"});
  auto op = dcss.wait_completion(h, 5s);
  ASSERT_TRUE(op);
  EXPECT_EQ(op->result, "again");
  EXPECT_TRUE(dcss.records_of("htos_motor_move_started").empty());
  EXPECT_EQ(session->connections(), 2u);
}

TEST_F(Online, ReconnectAfterDcssRestartsWithinFiveSeconds) {
  const auto h = dcss.start_operation("simDHS", "echo", {"x"});
  ASSERT_TRUE(dcss.wait_completion(h, 5s));
  dcss.restart();
  const auto t0 = Clock::now();
  ASSERT_TRUE(dcss.wait_online("simDHS", 5s, 2));
  EXPECT_LT(Clock::now() - t0, 5s);
  EXPECT_TRUE(session->wait_connections(2, 5s));
  // The new burst is authoritative and the DHS serves again.
  const auto h2 = dcss.start_operation("simDHS", "echo", {"y"});
  auto op = dcss.wait_completion(h2, 5s);
  ASSERT_TRUE(op);
  EXPECT_EQ(op->result, "y");
}

TEST_F(Online, OperationsOfADroppedConnectionStaySilent) {
  std::promise<OperationPtr> held;
  auto future = held.get_future();
  dhs.add_operation("slow", [&](const OperationPtr& op) { held.set_value(op); });
  const auto h = dcss.start_operation("simDHS", "slow");
  auto op = future.get();
  dcss.drop("simDHS");
  ASSERT_TRUE(dcss.wait_online("simDHS", 5s, 2));
  auto rec = dcss.operation(h);
  EXPECT_EQ(rec->status, "no_hw_host_simDHS");  // DCSS failed it
  EXPECT_TRUE(op->aborted());
  EXPECT_FALSE(op->complete("normal", "late"));
  op->update("late update");
  op.reset();
  // An operation on the new connection: the DHS sends in order, so a late
  // message sent above would be recorded before its completion.
  const auto h2 = dcss.start_operation("simDHS", "echo", {"after"});
  ASSERT_TRUE(dcss.wait_completion(h2, 5s));
  for (const auto& r : dcss.records()) EXPECT_EQ(r.text.find("late"), std::string::npos) << r.text;
  EXPECT_TRUE(dcss.violations().empty()) << dcss.violations().front();
}

TEST_F(Online, BadHeaderMakesTheDhsReconnect) {
  // A header-less frame starting with '-' is read as a 200-byte xos1 frame (ignored) ...
  std::string junk = "    -7 garbage header here";
  junk.resize(xos::kV1FrameSize, 'x');
  dcss.send_raw("simDHS", junk);
  // ... a non-numeric xos2 header cannot be resynchronised: the DHS reconnects.
  dcss.send_raw("simDHS", "          12           xx ");
  ASSERT_TRUE(dcss.wait_online("simDHS", 5s, 2));
  const auto h = dcss.start_operation("simDHS", "echo", {"ok"});
  ASSERT_TRUE(dcss.wait_completion(h, 5s));
}

TEST_F(Online, NonZeroBinaryIsSkipped) {
  char hdr[27];
  const std::string text = "stoh_get_encoder enc";
  std::snprintf(hdr, sizeof hdr, "%12zu %12d ", text.size() + 1, 4);
  dcss.send_raw("simDHS", std::string(hdr) + text + std::string(1, '\0') + "BINX");
  ASSERT_TRUE(dcss.wait_for(
      [](const auto& rs) {
        for (const auto& r : rs)
          if (r.tokens[0] == "htos_get_encoder_completed") return true;
        return false;
      },
      5s));
  const auto h = dcss.start_operation("simDHS", "echo", {"after"});
  auto op = dcss.wait_completion(h, 5s);
  ASSERT_TRUE(op);
  EXPECT_EQ(op->result, "after");
  EXPECT_EQ(session->connections(), 1u);
}

TEST(SessionRejection, UnknownNameAndDuplicateAreRetried) {
  auto fo = fake_options(xos::Protocol::v2);
  FakeDcss dcss(fo);
  dcss.start();
  DhsOptions unknown = dhs_options();
  unknown.name = "nobody";
  Dhs stranger(unknown);
  Session s1(session_options(dcss.port()), stranger);
  s1.start();
  EXPECT_TRUE(s1.wait_connections(2, 5s));  // handshake answered, closed silently, retried
  EXPECT_FALSE(dcss.online("nobody"));
  s1.stop();

  Dhs first(dhs_options()), second(dhs_options());
  Session a(session_options(dcss.port()), first);
  a.start();
  ASSERT_TRUE(dcss.wait_online("simDHS", 5s));
  Session b(session_options(dcss.port()), second);
  b.start();
  // One instance per name: the second is closed after its handshake (it
  // cannot tell before) and retries, and never gets the registration burst.
  EXPECT_TRUE(b.wait_connections(2, 5s));
  EXPECT_TRUE(a.online());
  EXPECT_EQ(a.connections(), 1u);
  EXPECT_TRUE(second.registered(xos::DeviceType::real_motor).empty());
  EXPECT_FALSE(first.registered(xos::DeviceType::real_motor).empty());
  a.stop();
  ASSERT_TRUE(dcss.wait_online("simDHS", 5s, 2));  // the second takes over
  EXPECT_TRUE(eventually([&] { return b.online(); }, 5s));
  b.stop();
}

TEST(SessionRejection, RefusedAndAbsentDcssIsRetriedForever) {
  auto fo = fake_options(xos::Protocol::v1);
  FakeDcss dcss(fo);
  dcss.start();
  const std::uint16_t port = dcss.port();
  dcss.stop();  // absent: nothing listens on the port
  Dhs dhs(dhs_options());
  Session s(session_options(port), dhs);
  s.start();
  // Then a DCSS that accepts and closes at once: the attempts it sees are
  // the DHS's retries.
  auto listener = Listener::listen("127.0.0.1", port);
  ASSERT_TRUE(listener) << listener.error().message;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    Socket c = listener->accept(5s);
    ASSERT_TRUE(c.valid()) << "no connection attempt " << attempt;
  }
  EXPECT_FALSE(s.online());
  EXPECT_EQ(s.connections(), 0u);
  listener->close();
  dcss.start();  // the same port again
  EXPECT_TRUE(dcss.wait_online("simDHS", 5s));
  s.stop();
}

TEST(SessionRejection, DcssThatStopsReadingIsDetected) {
  auto fo = fake_options(xos::Protocol::v2);
  FakeDcss dcss(fo);
  dcss.start();
  DhsOptions o = dhs_options();
  Dhs dhs(o);
  dhs.add_operation("flood", [](const OperationPtr& op) {
    const std::string chunk(900, 'z');
    for (int i = 0; i < 20000 && !op->cancelled(); ++i) op->update(chunk);
    op->complete("normal");
  });
  auto so = session_options(dcss.port());
  so.write_timeout = 300ms;
  Session s(so, dhs);
  s.start();
  ASSERT_TRUE(dcss.wait_online("simDHS", 5s));
  dcss.set_reading("simDHS", false);
  dcss.start_operation("simDHS", "flood");
  ASSERT_TRUE(s.wait_connections(2, 10s));  // gave up on the stalled link, reconnected
  s.stop();
}

}  // namespace
}  // namespace acheron::dcss
