// The UbloxControl gRPC front with a generated C++ stub, on loopback.
#include <gtest/gtest.h>

#include <grpcpp/grpcpp.h>

#include <unistd.h>

#include <filesystem>

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

// ------------------------------------------------------------------ limits and security

ServerOptions loopback_options() {
  ServerOptions o;
  o.bind = "127.0.0.1:0";
  o.shutdown_grace = 200ms;
  o.service = fast_service();
  return o;
}

std::unique_ptr<ubloxcontrol::UbloxControl::Stub> plain_stub(const UbloxControlServer& server) {
  return ubloxcontrol::UbloxControl::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(server.port()), grpc::InsecureChannelCredentials()));
}

// Every call holds a gRPC thread while it runs (a capture for its whole
// life): the thread quota bounds them, and a call beyond it is refused
// instead of starting one more thread.
TEST(Server, CallsBeyondTheThreadQuotaAreRefused) {
  SimulatedF9t sim(fast_sim());
  auto options = loopback_options();
  options.max_threads = 4;
  UbloxControlServer server(options);
  auto stub = plain_stub(server);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ubloxcontrol::InitF9tRequest req;
    json_to_struct(request_for(sim), req.mutable_f9t_config());
    ubloxcontrol::InitF9tResponse resp;
    ASSERT_TRUE(stub->InitF9t(&ctx, req, &resp).ok());
  }
  struct Capture {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<ubloxcontrol::CaptureUbloxResponse>> reader;
  };
  std::vector<std::unique_ptr<Capture>> running;
  grpc::Status refused;
  for (int i = 0; i < options.max_threads + 2 && refused.ok(); ++i) {
    auto c = std::make_unique<Capture>();
    c->reader = stub->CaptureUblox(&c->ctx, ubloxcontrol::CaptureUbloxRequest());
    ubloxcontrol::CaptureUbloxResponse r;
    if (c->reader->Read(&r)) {  // the cached messages come at once
      running.push_back(std::move(c));
    } else {
      refused = c->reader->Finish();
    }
  }
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  // One thread stays free to take calls (and refuse them).
  EXPECT_EQ(running.size(), static_cast<std::size_t>(options.max_threads - 1));
  // A capture that ends gives its thread back.
  running.back()->ctx.TryCancel();
  running.back()->reader->Finish();
  running.pop_back();
  ASSERT_TRUE(eventually([&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    auto reader = stub->CaptureUblox(&ctx, ubloxcontrol::CaptureUbloxRequest());
    ubloxcontrol::CaptureUbloxResponse r;
    const bool ok = reader->Read(&r);
    ctx.TryCancel();
    reader->Finish();
    return ok;
  }));
  for (auto& c : running) {
    c->ctx.TryCancel();
    c->reader->Finish();
  }
}

TEST(Server, OversizeRequestIsRefusedAndTheServerServesOn) {
  SimulatedF9t sim(fast_sim());
  auto options = loopback_options();
  options.max_receive_message_bytes = 16 << 10;
  UbloxControlServer server(options);
  auto stub = plain_stub(server);
  auto init = [&](const nlohmann::json& config) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ubloxcontrol::InitF9tRequest req;
    json_to_struct(config, req.mutable_f9t_config());
    ubloxcontrol::InitF9tResponse resp;
    return stub->InitF9t(&ctx, req, &resp);
  };
  auto big = request_for(sim);
  big["comment"] = std::string(32 << 10, 'x');
  EXPECT_EQ(init(big).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  const auto st = init(request_for(sim));
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST(Server, LimitsOutsideTheirRangeAreSetupErrors) {
  auto o = loopback_options();
  o.max_threads = 1;
  EXPECT_THROW(UbloxControlServer{o}, SetupError);
  o = loopback_options();
  o.max_receive_message_bytes = 100;
  EXPECT_THROW(UbloxControlServer{o}, SetupError);
  o = loopback_options();
  o.tls.cert_file = "server.pem";  // without its key
  EXPECT_THROW(UbloxControlServer{o}, SetupError);
  o = loopback_options();
  o.tls.client_ca_file = "ca.pem";  // without TLS
  EXPECT_THROW(UbloxControlServer{o}, SetupError);
}

TEST(Server, TlsWithAndWithoutClientCertificates) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("acheron_gnss_tls_" + std::to_string(::getpid()));
  auto pki = make_test_pki(dir);
  if (!pki) GTEST_SKIP() << "the openssl command is not available";
  SimulatedF9t sim(fast_sim());
  auto options = loopback_options();
  options.tls.cert_file = pki->file("server.pem");
  options.tls.key_file = pki->file("server.key");
  {
    UbloxControlServer server(options);
    const std::string target = "127.0.0.1:" + std::to_string(server.port());
    ClientTls tls;
    tls.ca_file = pki->file("ca.pem");
    UbloxClient client(target, tls);
    EXPECT_EQ(client.init(request_for(sim), true, 10s),
              "F9T initialized, configured, and verified successfully.");
    int n = 0;
    client.capture({"TIM"}, [&](const CapturedMessage&) { return ++n < 2; });
    EXPECT_EQ(n, 2);
    auto refused = [&](const ClientTls& t) {
      try {
        UbloxClient(target, t).init(request_for(sim), true, 2s);
      } catch (const Failure& e) {
        return e.code() == StatusCode::unavailable || e.code() == StatusCode::deadline_exceeded;
      }
      return false;
    };
    EXPECT_TRUE(refused({}));  // plaintext
    ClientTls wrong;
    wrong.ca_file = pki->file("other_ca.pem");
    EXPECT_TRUE(refused(wrong));
    server.shutdown();
  }
  options.tls.client_ca_file = pki->file("ca.pem");
  {
    UbloxControlServer server(options);
    const std::string target = "127.0.0.1:" + std::to_string(server.port());
    ClientTls tls;
    tls.ca_file = pki->file("ca.pem");
    try {
      UbloxClient(target, tls).init(request_for(sim), true, 2s);
      ADD_FAILURE() << "a client without a certificate was served";
    } catch (const Failure& e) {
      EXPECT_TRUE(e.code() == StatusCode::unavailable || e.code() == StatusCode::deadline_exceeded)
          << e.what();
    }
    tls.cert_file = pki->file("client.pem");
    tls.key_file = pki->file("client.key");
    EXPECT_EQ(UbloxClient(target, tls).init(request_for(sim), true, 10s),
              "F9T initialized, configured, and verified successfully.");
    server.shutdown();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace acheron::gnss
