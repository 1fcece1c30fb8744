// The UbloxControl gRPC front with a generated C++ stub, on loopback.
#include <gtest/gtest.h>

#include <grpcpp/grpcpp.h>

#include "GnssTestSupport.hh"
#include "acheron/gnss/Client.hh"
#include "acheron/gnss/Convert.hh"
#include "acheron/gnss/Server.hh"
#include "acheron/ublox_control.grpc.pb.h"

namespace acheron::gnss {
namespace {
namespace ubx = wire::ubx;
using namespace test;

struct Served {
  explicit Served(ServiceOptions o = fast_service())
      : server(ServerOptions{"127.0.0.1:0", 200ms, o}) {
    channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server.port()),
                                  grpc::InsecureChannelCredentials());
    stub = ubloxcontrol::UbloxControl::NewStub(channel);
  }
  grpc::Status init(const nlohmann::json& config, bool force, ubloxcontrol::InitF9tResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    ubloxcontrol::InitF9tRequest req;
    json_to_struct(config, req.mutable_f9t_config());
    req.set_force_init(force);
    return stub->InitF9t(&ctx, req, resp);
  }
  UbloxControlServer server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<ubloxcontrol::UbloxControl::Stub> stub;
};

TEST(Server, InitAndCaptureOverGrpc) {
  SimulatedF9t sim(fast_sim());
  Served s;
  ubloxcontrol::InitF9tResponse resp;
  const auto config = request_for(sim);
  auto st = s.init(config, false, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.init_status(), ubloxcontrol::InitF9tResponse::SUCCESS);
  EXPECT_EQ(resp.message(), "F9T initialized, configured, and verified successfully.");
  EXPECT_EQ(struct_to_json(resp.f9t_config())["f9t_uid"], "DF03A241BC");
  EXPECT_EQ(struct_to_json(resp.f9t_config())["cfg_key_settings"].size(), 40u);

  grpc::ClientContext ctx;
  ubloxcontrol::CaptureUbloxRequest req;
  req.add_patterns("TIM-TP");
  auto reader = s.stub->CaptureUblox(&ctx, req);
  ubloxcontrol::CaptureUbloxResponse r;
  std::optional<std::uint32_t> last_tow;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(reader->Read(&r));
    EXPECT_EQ(r.type(), ubloxcontrol::CaptureUbloxResponse::DATA);
    EXPECT_EQ(r.name(), "TIM-TP");
    EXPECT_TRUE(r.message().empty());
    // payload: the complete frame; parsed_data: its fields.
    auto f = ubx::Frame::from_bytes(ubx::ByteSpan(
        reinterpret_cast<const std::uint8_t*>(r.payload().data()), r.payload().size()));
    ASSERT_TRUE(f.ok());
    const auto tp = ubx::decode_tim_tp(f->payload()).value();
    const auto d = struct_to_json(r.parsed_data());
    EXPECT_EQ(d["towMS"], static_cast<double>(tp.tow_ms));
    EXPECT_EQ(d["identity"], "TIM-TP");
    EXPECT_EQ(d["msg_cls"], "\r");
    EXPECT_EQ(d["length"], 16.0);
    const double ts = static_cast<double>(r.pkt_unix_timestamp().seconds()) +
                      r.pkt_unix_timestamp().nanos() * 1e-9;
    EXPECT_NEAR(ts, wall_time_ns() * 1e-9, 5.0);
    if (last_tow) {
      EXPECT_EQ(tp.tow_ms, *last_tow + 1000);
    }
    last_tow = tp.tow_ms;
  }
  // A forced re-init ends the stream with OK.
  EXPECT_TRUE(s.init(config, true, &resp).ok());
  while (reader->Read(&r)) {
  }
  EXPECT_TRUE(reader->Finish().ok());
}

TEST(Server, ErrorsAreGrpcStatuses) {
  Served s;
  ubloxcontrol::InitF9tResponse resp;
  SimulatedF9t sim(fast_sim());
  auto config = request_for(sim);
  config.erase("device");
  auto st = s.init(config, false, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("Device path not specified"), std::string::npos);
  config["device"] = "/dev/nonexistentdevice12345";
  EXPECT_EQ(s.init(config, false, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  {
    grpc::ClientContext ctx;
    ubloxcontrol::CaptureUbloxRequest req;
    auto reader = s.stub->CaptureUblox(&ctx, req);
    ubloxcontrol::CaptureUbloxResponse r;
    EXPECT_FALSE(reader->Read(&r));
    auto fin = reader->Finish();
    EXPECT_EQ(fin.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(fin.error_message(), "F9T is not initialized or I/O is not running.");
  }
  {
    grpc::ClientContext ctx;
    ubloxcontrol::PollRequest req;
    ubloxcontrol::PollResponse resp2;
    EXPECT_EQ(s.stub->PollMessage(&ctx, req, &resp2).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
  ASSERT_TRUE(s.init(request_for(sim), false, &resp).ok());
  {
    grpc::ClientContext ctx;
    ubloxcontrol::CaptureUbloxRequest req;
    req.add_patterns("[");
    auto reader = s.stub->CaptureUblox(&ctx, req);
    ubloxcontrol::CaptureUbloxResponse r;
    EXPECT_FALSE(reader->Read(&r));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST(Server, UnplugGivesUnavailableAndServerKeepsServing) {
  auto sim = std::make_unique<SimulatedF9t>(fast_sim());
  Served s;
  ubloxcontrol::InitF9tResponse resp;
  ASSERT_TRUE(s.init(request_for(*sim), false, &resp).ok());
  grpc::ClientContext ctx;
  ubloxcontrol::CaptureUbloxRequest req;
  auto reader = s.stub->CaptureUblox(&ctx, req);
  ubloxcontrol::CaptureUbloxResponse r;
  ASSERT_TRUE(reader->Read(&r));
  sim->unplug();
  while (reader->Read(&r)) {
  }
  const auto fin = reader->Finish();
  EXPECT_EQ(fin.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(fin.error_message().find("was lost"), std::string::npos) << fin.error_message();
  sim = std::make_unique<SimulatedF9t>(fast_sim());
  EXPECT_TRUE(s.init(request_for(*sim), false, &resp).ok());
}

TEST(Server, CppClientInitCaptureAndCancel) {
  SimulatedF9t sim(fast_sim());
  Served s;
  UbloxClient client("127.0.0.1:" + std::to_string(s.server.port()));
  EXPECT_EQ(client.init(request_for(sim), false, 5s),
            "F9T initialized, configured, and verified successfully.");
  std::vector<CapturedMessage> got;
  client.capture({"NAV"}, [&](const CapturedMessage& m) {
    got.push_back(m);
    return got.size() < 3;
  });
  ASSERT_EQ(got.size(), 3u);
  for (const auto& m : got) {
    EXPECT_EQ(m.name, "NAV-TIMEUTC");
    EXPECT_EQ(m.parsed["identity"], "NAV-TIMEUTC");
    EXPECT_TRUE(ubx::Frame::from_bytes(m.frame).ok());
    EXPECT_NEAR(static_cast<double>(m.unix_ns), static_cast<double>(wall_time_ns()), 5e9);
  }
  // A capture that receives nothing ends when cancelled from another thread.
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    client.cancel();
  });
  const auto t0 = Clock::now();
  client.capture({"NOTHING"}, [](const CapturedMessage&) { return true; });
  canceller.join();
  EXPECT_LT(Clock::now() - t0, 5s);
  // A server that is not there: unavailable.
  UbloxClient nobody("127.0.0.1:1");
  try {
    nobody.init(request_for(sim), false, 2s);
    ADD_FAILURE() << "init without a server succeeded";
  } catch (const Failure& e) {
    EXPECT_TRUE(e.code() == StatusCode::unavailable || e.code() == StatusCode::deadline_exceeded)
        << e.what();
  }
}

}  // namespace
}  // namespace acheron::gnss
