// The loop DHS (dcss-xos.md §9): result semantics, the AutoML and Axis HTTP
// clients against their doubles, the JPEG receiver, and whole operations
// through a fake DCSS, including a 90-frame collectLoopImages at 30 fps and
// the documented error completions.
#include <gtest/gtest.h>
#include <unistd.h>

#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "acheron/dcss/Automl.hh"
#include "acheron/dcss/Camera.hh"
#include "acheron/dcss/FakeCamera.hh"
#include "acheron/dcss/FakeDcss.hh"
#include "acheron/dcss/JpegReceiver.hh"
#include "acheron/dcss/LoopDhs.hh"
#include "acheron/dcss/Runner.hh"
#include "acheron/dcss/Socket.hh"
#include "acheron/wire/Xos.hh"

namespace acheron::dcss {
namespace {

using namespace std::chrono_literals;
namespace xos = wire::xos;

// Updates recorded for `handle` (for FakeDcss::wait_for predicates, which run
// under the fake's lock and must not call back into it).
std::size_t updates_for(const std::vector<FakeDcss::Record>& rs, const std::string& handle) {
  std::size_t n = 0;
  for (const auto& r : rs) {
    n += r.tokens.size() > 2 && r.tokens[0] == "htos_operation_update" && r.tokens[2] == handle;
  }
  return n;
}

Prediction prediction(std::vector<Detection> d) {
  return {"k", std::move(d)};
}

TEST(LoopResults, Semantics) {
  // [ymin, xmin, ymax, xmax]
  auto p = prediction({{"nylon", 0.9, 0.4, 0.3, 0.6, 0.7}, {"pin", 0.8, 0.45, 0.0, 0.55, 0.3}});
  auto r = evaluate_loop(p, 0.5, 5);
  EXPECT_TRUE(r.ok);
  EXPECT_DOUBLE_EQ(r.tip_x, 0.7);
  EXPECT_DOUBLE_EQ(r.tip_y, 0.5);
  EXPECT_NEAR(r.loop_width, 0.2, 1e-12);
  EXPECT_NEAR(r.loop_width_x, 0.4, 1e-12);
  EXPECT_DOUBLE_EQ(r.pin_base_x, 0.3);
  EXPECT_DOUBLE_EQ(r.fiber_width, 0.222);
  EXPECT_EQ(r.is_micro_mount, 0);
  EXPECT_EQ(r.loop_class, "nylon");
  // Top score below the threshold: failed.
  EXPECT_FALSE(evaluate_loop(p, 0.95, 5).ok);
  // Mitegen is a micro mount; no pin ⇒ pinBaseX 0.
  r = evaluate_loop(prediction({{"mitegen", 0.5, 0.1, 0.1, 0.2, 0.2}}), 0.1, 5);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.is_micro_mount, 1);
  EXPECT_DOUBLE_EQ(r.pin_base_x, 0.0);
  // Only the first scan_n_results are considered; no loop there ⇒ failed, score 0.
  r = evaluate_loop(prediction({{"pin", 0.9, 0, 0, 1, 1}, {"nylon", 0.8, 0, 0, 1, 1}}), 0.1, 1);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.loop_class, "none");
  EXPECT_DOUBLE_EQ(r.loop_score, 0);
  EXPECT_FALSE(evaluate_loop(prediction({}), 0.1, 5).ok);
}

TEST(LoopResults, LoopInfoHasSixteenTokens) {
  auto r = evaluate_loop(prediction({{"nylon", 0.9, 0.4, 0.3, 0.6, 0.7}}), 0.5, 5);
  const auto text = loop_info_text(43, r);
  const auto t = xos::tokenize(text);
  ASSERT_EQ(t.size(), 16u);
  EXPECT_EQ(t[0], "LOOP_INFO");
  EXPECT_EQ(t[1], "43");
  EXPECT_EQ(t[2], "normal");
  EXPECT_EQ(t[3], "0.70000");
  EXPECT_EQ(t[6], "0.22200");
  EXPECT_EQ(t[13], "0");
  EXPECT_EQ(t[14], "nylon");
  EXPECT_EQ(t[15], "0.90000");
  EXPECT_EQ(xos::tokenize(loop_info_text(1, LoopResult{}))[2], "failed");
}

TEST(LoopResults, AutomlJson) {
  const auto jpeg = make_test_jpeg(64, 48, 1);
  const auto j = nlohmann::json::parse(automl_request(jpeg, "getLoopTip:1.2"));
  EXPECT_EQ(j["instances"][0]["key"], "getLoopTip:1.2");
  EXPECT_EQ(*base64_decode(j["instances"][0]["image_bytes"]["b64"].get<std::string>()), jpeg);
  EXPECT_EQ(j["params"][0]["max_bounding_box_count"], "10");  // a string
  FakeAutomlOptions o;
  auto p = parse_automl_reply(FakeAutoml::canned_reply("collectLoopImages:1.1:7", o),
                              "collectLoopImages:1.1:7");
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->detections.size(), 4u);
  EXPECT_EQ(p->detections[0].cls, "nylon");
  EXPECT_DOUBLE_EQ(p->detections[0].xmax, 0.514);
  EXPECT_FALSE(parse_automl_reply("not json", "k").ok());
  EXPECT_FALSE(parse_automl_reply(R"({"predictions": []})", "k").ok());
  EXPECT_FALSE(parse_automl_reply(R"({"predictions": [{"key": "other"}]})", "k").ok());
  EXPECT_FALSE(
      parse_automl_reply(
          R"({"predictions": [{"key": "k", "detection_scores": [0.5], "detection_boxes": [[1,2]]}]})",
          "k")
          .ok());
  // Found by fuzz_automl: a class index out of int's range was cast
  // (undefined behaviour); such a detection now has no class.
  auto huge = parse_automl_reply(
      R"({"predictions": [{"detection_scores": [0.9, 0.8], "detection_boxes": [[0,0,1,1], [0,0,1,1]],
          "detection_classes": [1e300, 2]}]})",
      "");
  ASSERT_TRUE(huge.ok());
  ASSERT_EQ(huge->detections.size(), 2u);
  EXPECT_EQ(huge->detections[0].cls, "");
  EXPECT_EQ(huge->detections[1].cls, "class2");
  const std::string bin("\x00\xff\x10 abc", 7);
  EXPECT_EQ(*base64_decode(base64_encode(bin)), bin);
  EXPECT_FALSE(base64_decode("@@@").ok());
}

TEST(LoopHttp, JpegReceiverRules) {
  std::vector<std::string> got;
  std::mutex m;
  JpegReceiverOptions o;
  o.port = 0;
  o.max_bytes = 1000;
  JpegReceiver rx(o, [&](std::string image, std::string) {
    std::lock_guard lock(m);
    got.push_back(std::move(image));
  });
  rx.start();
  httplib::Client cli("127.0.0.1", rx.port());
  auto res = cli.Post("/any/path", std::string("\xFF\xD8jpegdata\xFF\xD9"), "image/jpeg");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Connection"), "close");
  res = cli.Post("/x", std::string(2000, 'a'), "image/jpeg");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  res = cli.Post("/x", "text", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 415);
  // Raw requests: no Content-Length ⇒ 411; Expect: 100-continue is honoured.
  auto raw = [&](const std::string& request, const std::string& body) {
    auto s = Socket::connect("127.0.0.1", rx.port(), 2s);
    EXPECT_TRUE(s.ok());
    EXPECT_EQ(s->write_all(request, 2s), IoStatus::ok);
    std::string reply;
    char buf[4096];
    std::size_t n = 0;
    if (!body.empty()) {
      EXPECT_EQ(s->read_some(buf, sizeof buf, &n, 2s), IoStatus::ok);
      reply.append(buf, n);
      EXPECT_NE(reply.find("100 Continue"), std::string::npos) << reply;
      EXPECT_EQ(s->write_all(body, 2s), IoStatus::ok);
    }
    while (s->read_some(buf, sizeof buf, &n, 3s) == IoStatus::ok) reply.append(buf, n);
    return reply;
  };
  const std::string body =
      "\xFF\xD8"
      "0123456789";
  auto reply = raw("POST /img HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n\r\n",
                   body);
  EXPECT_NE(reply.find("200 OK"), std::string::npos) << reply;
  reply = raw(
      "POST /img HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nConnection: close\r\n\r\n", "");
  EXPECT_NE(reply.find("411"), std::string::npos) << reply;
  std::lock_guard lock(m);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1], body);
}

TEST(LoopHttp, AxisSnapshotAuthAndMjpeg) {
  FakeAxisOptions ao;
  ao.user = "root";
  ao.password = "secret";
  ao.mjpeg_fps = 100;
  FakeAxis axis(ao);
  axis.start();
  AxisOptions o;
  o.port = axis.port();
  EXPECT_FALSE(AxisClient(o).snapshot().ok());  // 401 without credentials
  o.user = "root";
  o.password = "secret";
  AxisClient client(o);
  auto jpeg = client.snapshot();
  ASSERT_TRUE(jpeg.ok()) << jpeg.error().message;
  EXPECT_EQ(*jpeg_size(*jpeg), std::make_pair(320, 240));
  std::atomic<bool> stop{false};
  std::vector<std::string> frames;
  auto n = client.stream(
      [&](std::string f) {
        frames.push_back(std::move(f));
        return frames.size() < 5;
      },
      stop, 100);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(frames.size(), 5u);
  for (const auto& f : frames) EXPECT_TRUE(jpeg_size(f).ok());
  axis.set_snapshot_status(503);
  EXPECT_FALSE(client.snapshot().ok());
}

TEST(LoopHttp, AutomlClientAndFailures) {
  FakeAutoml fake;
  fake.start();
  AutomlOptions o;
  o.port = fake.port();
  o.timeout_s = 0.5;
  AutomlClient client(o);
  EXPECT_TRUE(client.check_health());
  const auto jpeg = make_test_jpeg(64, 48, 3);
  auto p = client.predict(jpeg, "getLoopInfo:1.9");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->key, "getLoopInfo:1.9");
  EXPECT_FALSE(client.predict("not a jpeg", "k").ok());  // the double checks the JPEG
  EXPECT_EQ(fake.bad_requests(), 1u);
  auto fail_with = [&](auto change) {
    FakeAutomlOptions f;
    change(f);
    fake.set_options(f);
    return client.predict(jpeg, "k");
  };
  EXPECT_FALSE(fail_with([](auto& f) { f.status = 500; }).ok());
  EXPECT_FALSE(fail_with([](auto& f) { f.bad_json = true; }).ok());
  EXPECT_FALSE(fail_with([](auto& f) { f.no_predictions = true; }).ok());
  EXPECT_FALSE(fail_with([](auto& f) { f.delay = 1500ms; }).ok());  // timeout
  FakeAutomlOptions sick;
  sick.healthy = false;
  fake.set_options(sick);
  EXPECT_FALSE(client.check_health());  // health is separate from predictions
  EXPECT_TRUE(client.predict(jpeg, "k").ok());
  fake.stop();
  EXPECT_FALSE(client.predict(jpeg, "k").ok());
  EXPECT_FALSE(client.check_health());
}

// ------------------------------------------------------- whole operations

enum class Source : std::uint8_t { push, mjpeg };

struct LoopEnv {
  explicit LoopEnv(double osci_time = 0.5, double fps = 20, double grace = 30, int frames = -1,
                   Source source = Source::push, FakeAxisOptions axis_options = {},
                   const std::function<void(LoopConfig&)>& configure = {})
      : axis(axis_options), dcss(fake_dcss_options()) {
    automl.start();
    axis.start();
    dcss.start();
    DhsConfig c = default_dhs_config();
    c.dcss.port = dcss.port();
    c.dcss.reconnect_min = 50ms;
    c.dcss.reconnect_max = 300ms;
    c.loop.osci_time = osci_time;
    c.loop.video_fps = fps;
    c.loop.collect_grace_s = grace;
    c.loop.automl.port = automl.port();
    c.loop.automl.threshold = 0.5;
    c.loop.automl.timeout_s = 2;
    c.loop.axis.port = axis.port();
    c.loop.jpeg_receiver.bind = "127.0.0.1";
    c.loop.jpeg_receiver.port = 0;
    c.loop.frame_source = source == Source::mjpeg ? "mjpeg" : "push";
    push_frames = frames >= 0 ? frames : static_cast<int>(std::lround(osci_time * fps));
    push_fps = fps;
    c_source = source;
    if (configure) configure(c.loop);
    runner = std::make_unique<DhsRunner>(c);
    // DCSS's loop script: on start_oscillation the Axis server pushes frames.
    dcss.on_message([this](const FakeDcss::Record& r) {
      if (c_source == Source::push && r.tokens.size() == 4 &&
          r.tokens[0] == "htos_operation_update" && r.tokens[1] == "collectLoopImages" &&
          r.tokens[3] == "start_oscillation") {
        axis.push("127.0.0.1", runner->loop()->receiver_port(), push_frames, push_fps, push_path);
      }
    });
    runner->start();
    EXPECT_TRUE(dcss.wait_online("loopDHS", 5s));
  }
  ~LoopEnv() {
    runner->stop();
    axis.stop();
  }
  static FakeDcssOptions fake_dcss_options() {
    FakeDcssOptions o;
    o.rows = {{"loopDHS", "127.0.0.1", xos::Protocol::v2}};
    for (const char* op : {"collectLoopImages", "stopCollectLoopImages", "getLoopTip",
                           "getLoopInfo", "reboxLoopImage"}) {
      o.devices.push_back(FakeDevice::operation(op, "loopDHS"));
    }
    o.devices.push_back(FakeDevice::real_motor("gonio_phi", "loopDHS"));
    o.devices.push_back(FakeDevice::shutter("video_trigger", "loopDHS"));
    return o;
  }
  FakeDcss::OpRecord run(const std::string& op, const std::vector<std::string>& args = {},
                         Duration timeout = 10s) {
    const auto h = dcss.start_operation("loopDHS", op, args);
    auto rec = dcss.wait_completion(h, timeout);
    EXPECT_TRUE(rec) << op << " did not complete";
    return rec ? *rec : FakeDcss::OpRecord{};
  }
  // stopCollectLoopImages during the collect with handle h: the stop answers
  // "normal flag set" and the collect completes "normal done" within 5 s.
  std::optional<FakeDcss::OpRecord> stop_collect(const std::string& h) {
    auto stop = run("stopCollectLoopImages");
    EXPECT_EQ(stop.status, "normal");
    EXPECT_EQ(stop.result, "flag set");
    auto done = dcss.wait_completion(h, 5s);
    EXPECT_TRUE(done) << "the collect did not complete after the stop";
    if (!done) return std::nullopt;
    EXPECT_EQ(done->status, "normal");
    EXPECT_EQ(done->result, "done");
    return done;
  }
  FakeAutoml automl;
  FakeAxis axis;
  FakeDcss dcss;
  std::unique_ptr<DhsRunner> runner;
  int push_frames = 0;
  double push_fps = 30;
  std::string push_path = "/jpeg";
  Source c_source = Source::push;
};

// Checks a collect's updates: start_oscillation, then one 16-token LOOP_INFO
// per frame, indices 0..n-1 once each, every result the classifier's for
// that frame. Returns the number of LOOP_INFO updates.
std::size_t check_loop_infos(const FakeDcss::OpRecord& rec, std::size_t expected_max) {
  EXPECT_FALSE(rec.updates.empty());
  if (rec.updates.empty()) return 0;
  EXPECT_EQ(rec.updates[0], "start_oscillation");
  std::vector<bool> seen(expected_max, false);
  for (std::size_t i = 1; i < rec.updates.size(); ++i) {
    const auto t = xos::tokenize(rec.updates[i]);
    EXPECT_EQ(t.size(), 16u) << rec.updates[i];
    if (t.size() != 16u) continue;
    EXPECT_EQ(t[0], "LOOP_INFO");
    const int index = std::stoi(t[1]);
    EXPECT_GE(index, 0);
    EXPECT_LT(static_cast<std::size_t>(index), rec.updates.size() - 1) << "indices are dense";
    if (index < 0 || static_cast<std::size_t>(index) >= expected_max) continue;
    EXPECT_FALSE(seen[static_cast<std::size_t>(index)]) << "index twice: " << index;
    seen[static_cast<std::size_t>(index)] = true;
    EXPECT_EQ(t[2], "normal");
    EXPECT_EQ(t[3], xos::format_loop(0.5 + 0.002 * (index % 100))) << rec.updates[i];
    EXPECT_EQ(t[14], "nylon");
  }
  return rec.updates.size() - 1;
}

TEST(LoopDhsRun, CollectNinetyFramesAtThirtyFps) {
  LoopEnv env(3.0, 30.0);
  const auto t0 = Clock::now();
  auto rec = env.run("collectLoopImages", {"0.2"}, 20s);
  const auto elapsed = Clock::now() - t0;
  EXPECT_EQ(rec.status, "normal");
  EXPECT_EQ(rec.result, "done");
  ASSERT_EQ(rec.updates.size(), 91u);  // start_oscillation + one LOOP_INFO per frame
  EXPECT_EQ(rec.updates[0], "start_oscillation");
  std::vector<bool> seen(90, false);
  for (std::size_t i = 1; i < rec.updates.size(); ++i) {
    const auto t = xos::tokenize(rec.updates[i]);
    ASSERT_EQ(t.size(), 16u) << rec.updates[i];
    ASSERT_EQ(t[0], "LOOP_INFO");
    const int index = std::stoi(t[1]);
    ASSERT_GE(index, 0);
    ASSERT_LT(index, 90);
    EXPECT_FALSE(seen[static_cast<std::size_t>(index)]) << "index twice: " << index;
    seen[static_cast<std::size_t>(index)] = true;
    EXPECT_EQ(t[2], "normal");
    // The double's tip moves with the frame index: results are not mixed up.
    EXPECT_EQ(t[3], xos::format_loop(0.5 + 0.002 * index)) << rec.updates[i];
    EXPECT_EQ(t[14], "nylon");
  }
  EXPECT_LT(elapsed, 10s);
  EXPECT_EQ(env.automl.predictions(), 90u);
  EXPECT_TRUE(env.dcss.violations().empty()) << env.dcss.violations().front();
  // reboxLoopImage on the finished collect.
  auto rebox = env.run("reboxLoopImage", {"43", "0.517685", "0.563561"});
  EXPECT_EQ(rebox.status, "normal");
  EXPECT_EQ(rebox.result, "43 0.40000 0.60000 0.20000");
  rebox = env.run("reboxLoopImage", {"90", "0", "1"});
  EXPECT_EQ(rebox.status, "error");
  EXPECT_EQ(rebox.result, "no_such_image 90");
}

TEST(LoopDhsRun, SnapshotOperations) {
  LoopEnv env;
  auto tip = env.run("getLoopTip");
  EXPECT_EQ(tip.status, "normal");
  EXPECT_EQ(xos::tokenize(tip.result).size(), 2u);
  tip = env.run("getLoopTip", {"1"});
  EXPECT_EQ(xos::tokenize(tip.result).size(), 3u);  // + pinBaseX
  auto info = env.run("getLoopInfo", {"0.2"});
  EXPECT_EQ(info.status, "normal");
  const auto t = xos::tokenize(info.result);
  ASSERT_EQ(t.size(), 11u) << info.result;
  EXPECT_EQ(t[3], "0.22200");  // fiberWidth placeholder
  EXPECT_EQ(t[10], "0");       // nylon: not a micro mount
  // Below the threshold.
  FakeAutomlOptions low;
  low.score = 0.2;
  env.automl.set_options(low);
  tip = env.run("getLoopTip");
  EXPECT_EQ(tip.status, "error");
  EXPECT_EQ(tip.result, "TipNotInView +");
  info = env.run("getLoopInfo");
  EXPECT_EQ(info.status, "failed");
  EXPECT_EQ(info.result, "no_loop 0.20000");
  // Classifier and camera failures give documented errors.
  FakeAutomlOptions broken;
  broken.status = 503;
  env.automl.set_options(broken);
  EXPECT_EQ(env.run("getLoopInfo").result, "classifier_unavailable");
  env.automl.set_options({});
  env.axis.set_snapshot_status(500);
  tip = env.run("getLoopTip");
  EXPECT_EQ(tip.status, "error");
  EXPECT_EQ(tip.result, "camera_unavailable");
  EXPECT_TRUE(env.dcss.violations().empty()) << env.dcss.violations().front();
}

// A camera that answers the snapshot with something other than a JPEG, or
// accepts the connection and never answers: the snapshot operations complete
// camera_unavailable (the second within axis.timeout_s) and the DHS goes on.
TEST(LoopDhsRun, SnapshotThatIsNoJpegOrNeverComesIsCameraUnavailable) {
  httplib::Server page;
  page.Get(".*", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("<html>camera busy</html>", "text/html");
  });
  const int page_port = page.bind_to_any_port("127.0.0.1");
  std::thread page_thread([&] { page.listen_after_bind(); });
  // The kernel completes connections to a listener that never accepts.
  auto silent = Listener::listen("127.0.0.1", 0);
  ASSERT_TRUE(silent) << silent.error().message;
  const auto configure_camera = [](std::uint16_t port) {
    return [port](LoopConfig& loop) {
      loop.axis.port = port;
      loop.axis.timeout_s = 0.5;
    };
  };
  {
    LoopEnv env(0.5, 20, 30, -1, Source::push, {},
                configure_camera(static_cast<std::uint16_t>(page_port)));
    auto tip = env.run("getLoopTip");
    EXPECT_EQ(tip.status + " " + tip.result, "error camera_unavailable");
    EXPECT_EQ(env.run("getLoopInfo").result, "camera_unavailable");
    EXPECT_EQ(env.automl.predictions(), 0u) << "what is not a JPEG never reaches the classifier";
    EXPECT_TRUE(env.dcss.violations().empty()) << env.dcss.violations().front();
  }
  page.stop();
  page_thread.join();
  LoopEnv env(0.5, 20, 30, -1, Source::push, {}, configure_camera(silent->port()));
  const auto t0 = Clock::now();
  auto tip = env.run("getLoopTip", {}, 5s);
  EXPECT_EQ(tip.status + " " + tip.result, "error camera_unavailable");
  EXPECT_LT(Clock::now() - t0, 3s);
  EXPECT_TRUE(env.dcss.violations().empty()) << env.dcss.violations().front();
}

TEST(LoopDhsRun, StopBusyAbortAndTimeout) {
  LoopEnv env(2.0, 20.0, 30.0, 10);  // expects 40 frames, the camera sends 10
  const auto h = env.dcss.start_operation("loopDHS", "collectLoopImages");
  ASSERT_TRUE(env.dcss.wait_for(
      [&](const auto& rs) { return updates_for(rs, h) >= 11; },  // start_oscillation + 10
      10s));
  // A second collect while one runs.
  auto busy = env.run("collectLoopImages");
  EXPECT_EQ(busy.status, "error");
  EXPECT_EQ(busy.result, "busy");
  // Stop: every received frame is answered, so the collect completes.
  auto done = env.stop_collect(h);
  ASSERT_TRUE(done);
  EXPECT_EQ(env.runner->loop()->last_results().size(), 10u);

  // Abort during a collect: completes aborted, nothing more for that handle.
  const auto h2 = env.dcss.start_operation("loopDHS", "collectLoopImages");
  ASSERT_TRUE(env.dcss.wait_for([&](const auto& rs) { return updates_for(rs, h2) >= 3; }, 10s));
  env.dcss.abort_all("soft");
  auto aborted = env.dcss.wait_completion(h2, 3s);
  ASSERT_TRUE(aborted);
  EXPECT_EQ(aborted->status, "aborted");
  env.axis.wait_pushes(5s);
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(env.runner->loop()->collecting());
  EXPECT_TRUE(env.dcss.violations().empty()) << env.dcss.violations().front();
}

TEST(LoopDhsRun, CollectTimesOutAndClassifierFailuresAreFailedFrames) {
  LoopEnv env(0.5, 20.0, 0.5, 0);  // 10 frames expected, none sent, 1 s deadline
  auto rec = env.run("collectLoopImages", {}, 5s);
  EXPECT_EQ(rec.status, "error");
  EXPECT_EQ(rec.result, "timeout 0");
  // Classifier errors: each frame is reported failed and the collect still completes.
  env.push_frames = 10;
  FakeAutomlOptions broken;
  broken.bad_json = true;
  env.automl.set_options(broken);
  rec = env.run("collectLoopImages", {}, 10s);
  EXPECT_EQ(rec.status, "normal");
  ASSERT_EQ(rec.updates.size(), 11u);
  for (std::size_t i = 1; i < rec.updates.size(); ++i) {
    EXPECT_EQ(xos::tokenize(rec.updates[i])[2], "failed");
  }
}

// With loop.jpeg_receiver.token set, frames the camera pushes without it
// never reach a collect (which times out with no results); with it they all do.
TEST(LoopDhsRun, PushedFramesNeedTheReceiverToken) {
  LoopEnv env(0.5, 20.0, 0.5, -1, Source::push, {},
              [](LoopConfig& l) { l.jpeg_receiver.token = "bl831-Axis_token"; });
  auto rec = env.run("collectLoopImages", {}, 5s);  // 10 frames expected, 1 s deadline
  EXPECT_EQ(rec.status, "error");
  EXPECT_EQ(rec.result, "timeout 0");
  env.axis.wait_pushes(5s);
  EXPECT_EQ(env.axis.pushed(), 0u);
  EXPECT_EQ(env.axis.push_failures(), 10u);
  EXPECT_EQ(env.automl.predictions(), 0u);
  env.push_path = "/jpeg?token=bl831-Axis_token";
  rec = env.run("collectLoopImages", {}, 10s);
  EXPECT_EQ(rec.status, "normal");
  EXPECT_EQ(rec.result, "done");
  EXPECT_EQ(rec.updates.size(), 11u);
  env.axis.wait_pushes(5s);
  EXPECT_EQ(env.axis.pushed(), 10u);
  EXPECT_EQ(env.automl.predictions(), 10u);
  EXPECT_TRUE(env.dcss.violations().empty()) << env.dcss.violations().front();
}

TEST(LoopDhsRun, DcssRestartDuringCollectLeavesNothingBehind) {
  LoopEnv env(2.0, 20.0);
  const auto h = env.dcss.start_operation("loopDHS", "collectLoopImages");
  ASSERT_TRUE(env.dcss.wait_for([&](const auto& rs) { return updates_for(rs, h) >= 3; }, 10s));
  env.dcss.restart();
  ASSERT_TRUE(env.dcss.wait_online("loopDHS", 5s, 2));
  EXPECT_EQ(env.dcss.operation(h)->status, "no_hw_host_loopDHS");
  env.axis.wait_pushes(5s);
  // The DHS serves the new link; the old collect is gone.
  auto tip = env.run("getLoopTip");
  EXPECT_EQ(tip.status, "normal");
  EXPECT_FALSE(env.runner->loop()->collecting());
  EXPECT_TRUE(env.dcss.violations().empty()) << env.dcss.violations().front();
}

TEST(LoopDhsRun, ClassifierDownOrTooSlowNeverHangs) {
  LoopEnv env(0.2, 20.0, 30.0, 4, Source::push, {},
              [](LoopConfig& l) { l.automl.timeout_s = 0.5; });  // 4 frames
  // Too slow: every request times out, each frame is reported failed, the
  // collect still completes; the snapshot operations fail with the error.
  FakeAutomlOptions slow;
  slow.delay = 1s;
  env.automl.set_options(slow);
  const auto t0 = Clock::now();
  auto rec = env.run("collectLoopImages", {}, 10s);
  EXPECT_EQ(rec.status, "normal");
  ASSERT_EQ(rec.updates.size(), 5u);
  for (std::size_t i = 1; i < rec.updates.size(); ++i) {
    const auto t = xos::tokenize(rec.updates[i]);
    EXPECT_EQ(t[2], "failed");
    EXPECT_EQ(t[14], "none");
  }
  auto info = env.run("getLoopInfo", {}, 5s);
  EXPECT_EQ(info.status + " " + info.result, "error classifier_unavailable");
  EXPECT_LT(Clock::now() - t0, 5s);
  // Down: the same, at once.
  env.automl.stop();
  auto tip = env.run("getLoopTip", {"1"}, 5s);
  EXPECT_EQ(tip.status + " " + tip.result, "error classifier_unavailable");
  rec = env.run("collectLoopImages", {}, 10s);
  EXPECT_EQ(rec.status, "normal");
  ASSERT_EQ(rec.updates.size(), 5u);
  EXPECT_EQ(xos::tokenize(rec.updates[4])[2], "failed");
  EXPECT_TRUE(env.dcss.violations().empty()) << env.dcss.violations().front();
}

TEST(LoopDhsRun, ImagesAndResultsSavedForDebugging) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("acheron-loop-debug-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  // A file left from an earlier run with the same handle is replaced, not appended to.
  std::filesystem::create_directories(dir / "collectLoopImages1_3");
  std::ofstream(dir / "collectLoopImages1_3" / "0.jpg") << "stale bytes";
  {
    LoopEnv env(0.25, 20.0, 30.0, -1, Source::push, {}, [&](LoopConfig& l) {
      l.save_image_files = true;
      l.debug_dir = dir.string();
    });                                                // 5 frames
    auto rec = env.run("collectLoopImages", {}, 10s);  // handle 1.1
    ASSERT_EQ(rec.status, "normal");
    auto info = env.run("getLoopInfo");  // 1.2
    ASSERT_EQ(info.status, "normal");
    rec = env.run("collectLoopImages", {}, 10s);  // 1.3
    ASSERT_EQ(rec.status, "normal");
  }
  auto slurp = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  for (const char* sub : {"collectLoopImages1_1", "collectLoopImages1_3"}) {
    SCOPED_TRACE(sub);
    for (int i = 0; i < 5; ++i) {
      const auto jpeg = slurp(dir / sub / (std::to_string(i) + ".jpg"));
      EXPECT_TRUE(jpeg_size(jpeg).ok()) << "frame " << i << " is not a whole JPEG";
    }
    EXPECT_FALSE(std::filesystem::exists(dir / sub / "5.jpg"));
    const auto results = slurp(dir / sub / "results.txt");
    std::size_t lines = 0;
    for (const auto& line : xos::tokenize(results)) lines += line == "LOOP_INFO";
    EXPECT_EQ(lines, 5u) << results;
  }
  EXPECT_TRUE(jpeg_size(slurp(dir / "getLoopInfo1_2" / "snapshot.jpg")).ok());
  EXPECT_TRUE(slurp(dir / "getLoopInfo1_2" / "results.txt").starts_with("LOOP_INFO 0 normal "));
  std::filesystem::remove_all(dir);
}

// ------------------------------------------------ frames from the MJPEG stream

TEST(LoopDhsMjpeg, CollectNinetyFramesFromTheStreamAtThirtyFps) {
  LoopEnv env(3.0, 30.0, 30.0, 0, Source::mjpeg);
  EXPECT_EQ(env.runner->loop()->receiver_port(), 0);  // no JPEG receiver in this mode
  const auto t0 = Clock::now();
  auto rec = env.run("collectLoopImages", {"0.2"}, 20s);
  const auto elapsed = Clock::now() - t0;
  EXPECT_EQ(rec.status, "normal");
  EXPECT_EQ(rec.result, "done");
  ASSERT_EQ(rec.updates.size(), 91u);  // start_oscillation + one LOOP_INFO per frame
  EXPECT_EQ(check_loop_infos(rec, 90), 90u);
  // At the requested 30 fps the 90 frames take about 3 s.
  EXPECT_GE(elapsed, 2500ms);
  EXPECT_LT(elapsed, 10s);
  EXPECT_EQ(env.automl.predictions(), 90u);
  EXPECT_EQ(env.axis.pushed(), 0u);
  EXPECT_GE(env.axis.streamed_frames(), 90u);
  // The reader closes the stream once it has its frames.
  std::this_thread::sleep_for(300ms);
  const auto streamed = env.axis.streamed_frames();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(env.axis.streamed_frames(), streamed);
  EXPECT_EQ(env.runner->loop()->last_results().size(), 90u);
  auto rebox = env.run("reboxLoopImage", {"89", "0", "1"});
  EXPECT_EQ(rebox.status, "normal");
  EXPECT_EQ(rebox.result, "89 0.40000 0.60000 0.20000");
  EXPECT_TRUE(env.dcss.violations().empty()) << env.dcss.violations().front();
}

TEST(LoopDhsMjpeg, StopAndAbortDuringAStreamRun) {
  LoopEnv env(10.0, 30.0, 30.0, 0, Source::mjpeg);  // 300 frames expected
  const auto h = env.dcss.start_operation("loopDHS", "collectLoopImages");
  ASSERT_TRUE(env.dcss.wait_for([&](const auto& rs) { return updates_for(rs, h) >= 11; }, 10s));
  auto done = env.stop_collect(h);
  ASSERT_TRUE(done);
  // Every frame taken before the stop is answered, once.
  const auto n = check_loop_infos(*done, 300);
  EXPECT_GE(n, 10u);
  EXPECT_LT(n, 300u);
  EXPECT_EQ(env.runner->loop()->last_results().size(), n);
  EXPECT_EQ(env.automl.predictions(), n);
  std::this_thread::sleep_for(300ms);
  const auto streamed = env.axis.streamed_frames();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(env.axis.streamed_frames(), streamed) << "the stream is still read after the stop";

  // Abort during a stream run: completes aborted, the stream is closed.
  const auto h2 = env.dcss.start_operation("loopDHS", "collectLoopImages");
  ASSERT_TRUE(env.dcss.wait_for([&](const auto& rs) { return updates_for(rs, h2) >= 4; }, 10s));
  env.dcss.abort_all("hard");
  auto aborted = env.dcss.wait_completion(h2, 3s);
  ASSERT_TRUE(aborted);
  EXPECT_EQ(aborted->status, "aborted");
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(env.runner->loop()->collecting());
  const auto after_abort = env.axis.streamed_frames();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(env.axis.streamed_frames(), after_abort);
  EXPECT_TRUE(env.dcss.violations().empty()) << env.dcss.violations().front();
}

TEST(LoopDhsMjpeg, CameraFailuresCompleteWithAnError) {
  // The stream ends after 10 of 30 frames: the 10 are reported, then the error.
  FakeAxisOptions short_stream;
  short_stream.mjpeg_max_frames = 10;
  LoopEnv env(1.0, 30.0, 30.0, 0, Source::mjpeg, short_stream);
  const auto t0 = Clock::now();
  auto rec = env.run("collectLoopImages", {}, 10s);
  EXPECT_EQ(rec.status, "error");
  EXPECT_EQ(rec.result, "camera_unavailable 10");
  EXPECT_EQ(check_loop_infos(rec, 30), 10u);
  EXPECT_LT(Clock::now() - t0, 5s);  // not the 31 s timeout
  // A camera that is gone: no frames, the same error at once.
  env.axis.stop();
  rec = env.run("collectLoopImages", {}, 10s);
  EXPECT_EQ(rec.status, "error");
  EXPECT_EQ(rec.result, "camera_unavailable 0");
  ASSERT_EQ(rec.updates.size(), 1u);
  EXPECT_FALSE(env.runner->loop()->collecting());
  EXPECT_TRUE(env.dcss.violations().empty()) << env.dcss.violations().front();
}

TEST(LoopDhsMjpeg, StreamRefusedWithoutCredentialsFails) {
  FakeAxisOptions locked;
  locked.user = "root";
  locked.password = "pass";
  LoopEnv env(1.0, 30.0, 30.0, 0, Source::mjpeg, locked);
  auto rec = env.run("collectLoopImages", {}, 10s);
  EXPECT_EQ(rec.status, "error");
  EXPECT_EQ(rec.result, "camera_unavailable 0");
}

}  // namespace
}  // namespace acheron::dcss
