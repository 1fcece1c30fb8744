// InitF9t and CaptureUblox against the simulated receiver on a pseudo-terminal.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "GnssTestSupport.hh"

namespace acheron::gnss {
namespace {
namespace ubx = wire::ubx;
using namespace test;

std::string failure(const std::function<void()>& f, StatusCode want) {
  try {
    f();
  } catch (const Failure& e) {
    EXPECT_EQ(e.code(), want) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no Failure thrown";
  return {};
}

ubx::Bytes frame_of(const hub::SamplePtr& s) {
  return s->payload.at(kFrameArray).to_vector<std::uint8_t>();
}

TEST(Service, InitConfiguresVerifiesAndStartsCapture) {
  SimulatedF9t sim(fast_sim());
  UbloxService svc(fast_service());
  EXPECT_FALSE(svc.io_running());
  EXPECT_EQ(svc.init(request_for(sim), false),
            "F9T initialized, configured, and verified successfully.");
  EXPECT_TRUE(svc.io_running());
  // Two groups (19 signal keys, then 30 others), one verification of all 49.
  EXPECT_EQ(sim.stats().valset, 2u);
  EXPECT_EQ(sim.stats().valget, 1u);
  const auto* freq = ubx::find_key("CFG_TP_FREQ_TP2");
  EXPECT_EQ(sim.stored(ubx::kLayerRam, freq->id), ubx::encode_key_value(freq->type, 1e7).value());
  EXPECT_EQ(sim.stored(ubx::kLayerBbr, freq->id), ubx::encode_key_value(freq->type, 1e7).value());
  EXPECT_FALSE(sim.stored(ubx::kLayerFlash, freq->id));
  const auto* lon = ubx::find_key("CFG_TMODE_LON");
  EXPECT_EQ(sim.stored(ubx::kLayerRam, lon->id),
            ubx::encode_key_value(lon->type, -1220840575).value());
  // Messages arrive and are cached per identity.
  ASSERT_TRUE(eventually(
      [&] { return svc.topic().latest("TIM-TP") && svc.topic().latest("NAV-TIMEUTC"); }));
  auto cap = svc.capture({});
  auto s = cap.subscription->next(2s);
  ASSERT_TRUE(s);
  auto f = ubx::Frame::from_bytes(frame_of(*s));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(ubx::identity(f->message_id()), (*s)->key);
  EXPECT_EQ((*s)->payload.meta["parsed"]["identity"], (*s)->key);
  EXPECT_NEAR((*s)->payload.meta["wall_ns"].get<double>(), wall_time_ns(), 5e9);
}

TEST(Service, GroupsOfMoreThan64KeysUseATransaction) {
  SimulatedF9t sim(fast_sim());
  UbloxService svc(fast_service());
  auto req = request_for(sim);
  std::vector<std::uint32_t> extra;
  for (const auto& k : ubx::all_keys()) {
    if (extra.size() == 70) break;
    if (k.name.starts_with("CFG_MSGOUT_UBX_NAV_") &&
        !k.name.starts_with("CFG_MSGOUT_UBX_NAV_TIMEUTC")) {
      req["cfg_key_settings"].push_back({{"key", std::string(k.name)}, {"value", 1}});
      extra.push_back(k.id);
    }
  }
  ASSERT_EQ(extra.size(), 70u);
  EXPECT_EQ(svc.init(req, false), "F9T initialized, configured, and verified successfully.");
  // Signal group (19) in one message; the other 100 keys as a transaction of
  // two messages (64 + 36); 119 keys verified in two polls (64 + 55).
  EXPECT_EQ(sim.stats().valset, 3u);
  EXPECT_EQ(sim.stats().valget, 2u);
  for (auto id : extra) EXPECT_EQ(sim.stored(ubx::kLayerBbr, id), ubx::Bytes{1});
}

TEST(Service, LatestOfEachTypeFirstThenLive) {
  SimulatedF9t sim(fast_sim());
  UbloxService svc(fast_service());
  svc.init(request_for(sim), false);
  ASSERT_TRUE(eventually(
      [&] { return svc.topic().latest("TIM-TP") && svc.topic().latest("NAV-TIMEUTC"); }));
  std::this_thread::sleep_for(100ms);  // several seconds of simulated output
  const auto keys = svc.topic().keys();
  std::map<std::string, std::uint64_t> cached;
  for (const auto& k : keys) cached[k] = (*svc.topic().latest(k))->seq;
  auto cap = svc.capture({".*"});
  // First one sample per cached identity (each the cached one or newer), then live.
  std::set<std::string> seen;
  std::uint64_t last_seq = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    auto s = cap.subscription->next(1s);
    ASSERT_TRUE(s);
    EXPECT_TRUE(seen.insert((*s)->key).second)
        << "identity repeated before the snapshot ended: " << (*s)->key;
    EXPECT_GE((*s)->seq, cached[(*s)->key]);
    EXPECT_GT((*s)->seq, last_seq);
    last_seq = (*s)->seq;
  }
  for (int i = 0; i < 6; ++i) {
    auto s = cap.subscription->next(1s);
    ASSERT_TRUE(s);
    EXPECT_GT((*s)->seq, last_seq);  // live, in order
    last_seq = (*s)->seq;
  }
}

TEST(Service, PatternsAreAnchoredLikePythonReMatch) {
  EXPECT_FALSE(UbloxService::anchored_pattern({}));
  SimulatedF9t sim(fast_sim());
  UbloxService svc(fast_service());
  svc.init(request_for(sim), false);
  auto collect = [&](std::vector<std::string> patterns) {
    auto cap = svc.capture(patterns);
    std::set<std::string> names;
    const auto end = deadline_after(250ms);
    while (Clock::now() < end) {
      if (auto s = cap.subscription->next(20ms)) names.insert((*s)->key);
    }
    cap.subscription->close();
    return names;
  };
  EXPECT_EQ(collect({"TIM"}), std::set<std::string>{"TIM-TP"});
  EXPECT_TRUE(collect({"TP"}).empty());  // not anchored at the start
  EXPECT_EQ(collect({"NAV-TIMEUTC", "TIM-T."}), (std::set<std::string>{"NAV-TIMEUTC", "TIM-TP"}));
  EXPECT_EQ(collect({"(TIM|NAV)-T"}), (std::set<std::string>{"NAV-TIMEUTC", "TIM-TP"}));
  const auto all = collect({});
  EXPECT_TRUE(all.count("TIM-TP") && all.count("NAV-TIMEUTC"));
  const std::string m = failure([&] { svc.capture({"TIM", "("}); }, StatusCode::invalid_argument);
  EXPECT_NE(m.find("invalid pattern '('"), std::string::npos) << m;
  // Python re syntax that PANOSETI clients send.
  EXPECT_EQ(collect({R"((?P<cls>TIM)-\w+$)"}), std::set<std::string>{"TIM-TP"});
  EXPECT_EQ(collect({R"(^NAV-TIME\w{3}\b)"}), std::set<std::string>{"NAV-TIMEUTC"});
  // Back-references have no linear-time form: refused with a reason.
  const std::string b = failure([&] { svc.capture({R"((TIM)\1)"}); }, StatusCode::invalid_argument);
  EXPECT_NE(b.find("backreferences"), std::string::npos) << b;
}

// A pattern of 20,000 nested groups used to overflow the stack of the
// recursive std::regex compiler (SIGSEGV). It is refused as too long or too
// complex, and the service keeps capturing.
TEST(Service, HostilePatternsAreRefusedAndTheServiceKeepsServing) {
  SimulatedF9t sim(fast_sim());
  UbloxService svc(fast_service());
  svc.init(request_for(sim), false);
  const std::string nested = std::string(20000, '(') + "TIM" + std::string(20000, ')');
  const std::string m = failure([&] { svc.capture({nested}); }, StatusCode::invalid_argument);
  EXPECT_NE(m.find("too long"), std::string::npos) << m;
  // Short but with an exponential backtracking shape: linear in RE2, accepted.
  auto evil = svc.capture({"(TIM|TIM-)*(a+)+$"});
  evil.subscription->close();
  // Within the length limit but over the program-size budget.
  EXPECT_NE(failure([&] { svc.capture({R"(((\w{1000}){1000}))"}); }, StatusCode::invalid_argument)
                .find("invalid pattern"),
            std::string::npos);
  auto cap = svc.capture({"TIM"});
  auto s = cap.subscription->next(2s);
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)->key, "TIM-TP");
}

TEST(Service, WrongModelIsRejected) {
  auto opts = fast_sim();
  opts.faults.wrong_model = true;
  SimulatedF9t sim(opts);
  UbloxService svc(fast_service());
  EXPECT_EQ(failure([&] { svc.init(request_for(sim), false); }, StatusCode::invalid_argument),
            "Model ZED-F9P does not match expected prefix ZED-F9T.");
  EXPECT_FALSE(svc.io_running());
}

TEST(Service, WrongUniqueIdIsRejected) {
  auto opts = fast_sim();
  opts.unique_id = "0123456789";
  SimulatedF9t sim(opts);
  UbloxService svc(fast_service());
  EXPECT_EQ(failure([&] { svc.init(request_for(sim), false); }, StatusCode::invalid_argument),
            "Detected F9T UID 0123456789 does not match client UID DF03A241BC.");
  EXPECT_EQ(sim.stats().valset, 0u);  // nothing written to the wrong chip
}

TEST(Service, NakOnAKeyFailsInit) {
  auto opts = fast_sim();
  opts.faults.nak_keys = {ubx::find_key("CFG_TP_DUTY_TP2")->id};
  SimulatedF9t sim(opts);
  UbloxService svc(fast_service());
  EXPECT_EQ(failure([&] { svc.init(request_for(sim), false); }, StatusCode::internal),
            "Initialization failed: One or more configuration messages were NAKed.");
  EXPECT_FALSE(svc.io_running());
  EXPECT_EQ(failure([&] { svc.capture({}); }, StatusCode::failed_precondition),
            "F9T is not initialized or I/O is not running.");
}

TEST(Service, VerificationMismatchListsEachKey) {
  auto opts = fast_sim();
  opts.faults.mismatch_keys = {ubx::find_key("CFG_TP_FREQ_TP1")->id,
                               ubx::find_key("CFG_TP_ANT_CABLEDELAY")->id};
  SimulatedF9t sim(opts);
  UbloxService svc(fast_service());
  EXPECT_EQ(failure([&] { svc.init(request_for(sim), false); }, StatusCode::internal),
            "Initialization failed: Configuration verification failed for 2 items on layer RAM:\n"
            "Key: CFG_TP_ANT_CABLEDELAY, Wanted: 10, Got: 11\n"
            "Key: CFG_TP_FREQ_TP1, Wanted: 1, Got: 0");
}

TEST(Service, SilentDeviceTimesOut) {
  auto opts = fast_sim();
  opts.faults.silent = true;
  SimulatedF9t sim(opts);
  UbloxService svc(fast_service());
  EXPECT_EQ(failure([&] { svc.init(request_for(sim), false); }, StatusCode::internal),
            "Initialization failed: No MON-VER response");
}

TEST(Service, DeviceAndConfigErrors) {
  auto options = fast_service();
  const std::string dir = ::testing::TempDir();
  options.allowed_devices = {"/dev/pts/*", "/dev/null", dir + "*"};
  UbloxService svc(options);
  SimulatedF9t sim(fast_sim());
  auto req = request_for(sim);
  req["device"] = dir + "acheron_nonexistentdevice12345";
  EXPECT_EQ(failure([&] { svc.init(req, false); }, StatusCode::invalid_argument),
            "Device path " + dir + "acheron_nonexistentdevice12345 does not exist.");
  const std::string file = dir + "acheron_not_a_tty";
  std::ofstream(file) << "x";
  req["device"] = file;
  EXPECT_NE(failure([&] { svc.init(req, false); }, StatusCode::invalid_argument)
                .find("is not a character device"),
            std::string::npos);
  req.erase("device");
  EXPECT_EQ(failure([&] { svc.init(req, false); }, StatusCode::invalid_argument),
            "Device path not specified in config.");
  req = request_for(sim);
  req["apply_to_layers"] = {"RAM", "CLOUD"};
  EXPECT_NE(
      failure([&] { svc.init(req, false); }, StatusCode::invalid_argument).find("INVALID_CONFIG: "),
      std::string::npos);
  EXPECT_EQ(sim.stats().polls, 0u);  // nothing sent to the device
  req = request_for(sim);
  req["device"] = "/dev/null";  // a character device that is not a terminal
  EXPECT_NE(failure([&] { svc.init(req, false); }, StatusCode::unavailable)
                .find("Could not connect to device /dev/null."),
            std::string::npos);
}

// InitF9t used to open any path the client named read-write and to say
// whether it existed ("/etc/shadow is not a character device"). Only the
// operator's allowed devices are opened, and a forbidden path gets the same
// answer whether or not it exists.
TEST(Service, OnlyAllowedDevicesAreOpenedAndNothingElseIsRevealed) {
  SimulatedF9t sim(fast_sim());
  UbloxService svc(fast_service());  // the default allow-list
  auto req = request_for(sim);
  auto refused = [&](const std::string& path) {
    req["device"] = path;
    return failure([&] { svc.init(req, false); }, StatusCode::invalid_argument);
  };
  const std::string shadow = refused("/etc/shadow");
  EXPECT_NE(shadow.find("is not an allowed serial device"), std::string::npos) << shadow;
  EXPECT_EQ(shadow.find("character"), std::string::npos);
  const std::string missing = refused("/etc/acheron-no-such-file");
  EXPECT_EQ(missing.substr(missing.find(" is not")), shadow.substr(shadow.find(" is not")));
  EXPECT_NE(refused("/dev/pts/../../etc/shadow").find("not an allowed"), std::string::npos);
  EXPECT_NE(refused("/dev/null").find("not an allowed"), std::string::npos);
  EXPECT_NE(refused("dev/ttyS0").find("not an allowed"), std::string::npos);  // relative
  const std::string nul = refused(std::string("/dev/ttyS0\0/etc", 14));
  EXPECT_NE(nul.find("not an allowed"), std::string::npos) << nul;
  EXPECT_EQ(sim.stats().polls, 0u);
  // A link inside an allowed place that points outside it is refused too.
  const std::string dir = ::testing::TempDir() + "acheron_devlinks";
  std::filesystem::create_directories(dir);
  const std::string link = dir + "/gps0";
  std::filesystem::remove(link);
  std::filesystem::create_symlink("/etc/hostname", link);
  EXPECT_FALSE(device_allowed(link, {dir + "/*"}));
  EXPECT_TRUE(device_allowed(link, {dir + "/*", "/etc/*"}));
  // The simulated receiver's pseudo-terminal is allowed by default.
  EXPECT_TRUE(device_allowed(sim.device_path(), fast_service().allowed_devices));
  req["device"] = sim.device_path();
  EXPECT_EQ(svc.init(req, false), "F9T initialized, configured, and verified successfully.");
}

TEST(Service, ForceInitEndsStreamsOnlyWhenAsked) {
  SimulatedF9t sim(fast_sim());
  UbloxService svc(fast_service());
  svc.init(request_for(sim), false);
  auto cap = svc.capture({"TIM-TP"});
  ASSERT_TRUE(cap.subscription->next(2s));
  EXPECT_EQ(svc.active_captures(), 1u);
  EXPECT_EQ(failure([&] { svc.init(request_for(sim), false); }, StatusCode::failed_precondition),
            "Cannot initiate F9T while 1 clients are connected. Use force_init=True to end their "
            "streams and "
            "initialize anyway.");
  // Refused: the stream keeps running.
  EXPECT_TRUE(cap.subscription->next(2s));
  // An invalid config does not end the streams either, even with force.
  auto bad = request_for(sim);
  bad["f9t_uid"] = 7;
  failure([&] { svc.init(bad, true); }, StatusCode::invalid_argument);
  EXPECT_TRUE(cap.session->running());
  // Forced: the open stream ends with OK, then a fresh session starts.
  EXPECT_EQ(svc.init(request_for(sim), true),
            "F9T initialized, configured, and verified successfully.");
  EXPECT_TRUE(cap.subscription->closed());
  EXPECT_FALSE(cap.session->running());
  EXPECT_EQ(cap.session->end().code, StatusCode::ok);
  auto again = svc.capture({"TIM-TP"});
  EXPECT_TRUE(again.subscription->next(2s));
  // A client that went away does not block a later init.
  again.subscription->close();
  EXPECT_EQ(svc.active_captures(), 0u);
  EXPECT_NO_THROW(svc.init(request_for(sim), false));
}

TEST(Service, UnpluggedMidStreamEndsCleanlyAndReinitWorks) {
  auto sim = std::make_unique<SimulatedF9t>(fast_sim());
  UbloxService svc(fast_service());
  svc.init(request_for(*sim), false);
  auto cap = svc.capture({});
  ASSERT_TRUE(cap.subscription->next(2s));
  sim->unplug();
  ASSERT_TRUE(eventually([&] { return cap.subscription->closed(); }));
  EXPECT_FALSE(svc.io_running());
  const StreamEnd end = cap.session->end();
  EXPECT_EQ(end.code, StatusCode::unavailable);
  EXPECT_NE(end.message.find("was lost"), std::string::npos) << end.message;
  EXPECT_NE(end.message.find("call InitF9t"), std::string::npos) << end.message;
  EXPECT_EQ(failure([&] { svc.capture({}); }, StatusCode::failed_precondition),
            "F9T is not initialized or I/O is not running.");
  // Plugged in again (a new device node): re-init and capture work.
  sim = std::make_unique<SimulatedF9t>(fast_sim());
  EXPECT_EQ(svc.init(request_for(*sim), false),
            "F9T initialized, configured, and verified successfully.");
  auto again = svc.capture({"NAV"});
  auto s = again.subscription->next(2s);
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)->key, "NAV-TIMEUTC");
}

// The captured sample file replayed through the simulated device: after it,
// a new client's first messages are the file's last frame of each identity.
TEST(Service, CaptureFileLoading) {
  EXPECT_EQ(load_capture_jsonl("test/data/ubx_packets.jsonl").size(), 81u);
  const std::string bad = ::testing::TempDir() + "/acheron_bad_capture.jsonl";
  std::ofstream(bad)
      << "{\"identity\": \"TIM-TP\", \"payload_b64\": \"tWINARAAYF9JEAAAAAD+CQAASwkLP9th\"}\n"
      << "{\"identity\": \"TIM-TP\", \"payload_b64\": \"tWINARAAYF9JEAAAAAD+CQAASwkLP9ti\"}\n";
  try {
    load_capture_jsonl(bad);
    ADD_FAILURE() << "accepted a frame with a bad checksum";
  } catch (const SetupError& e) {
    EXPECT_NE(std::string(e.what()).find(":2: not a UBX frame"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_capture_jsonl("/nonexistent.jsonl"), SetupError);
}

TEST(Service, ReplayedCaptureLeavesTheLatestOfEachTypeInTheCache) {
  const auto frames = load_capture_jsonl("test/data/ubx_packets.jsonl");
  std::map<std::string, ubx::Bytes> last;
  for (const auto& f : frames) last[ubx::identity(ubx::Frame::from_bytes(f)->message_id())] = f;
  ASSERT_EQ(frames.size(), 81u);
  auto opts = fast_sim();
  opts.period = 5ms;
  opts.replay = frames;
  SimulatedF9t sim(opts);
  UbloxService svc(fast_service());
  svc.init(request_for(sim), false);
  ASSERT_TRUE(eventually([&] {
    auto tp = svc.topic().latest("TIM-TP");
    return tp && frame_of(*tp) == last["TIM-TP"];
  }));
  std::this_thread::sleep_for(50ms);
  auto cap = svc.capture({".*"});
  std::map<std::string, ubx::Bytes> got;
  while (auto s = cap.subscription->next(200ms)) got[(*s)->key] = frame_of(*s);
  EXPECT_EQ(got.size(), 3u);
  for (const auto& [name, bytes] : last) EXPECT_EQ(got[name], bytes) << name;
}

}  // namespace
}  // namespace acheron::gnss
