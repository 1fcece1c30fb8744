#include "acheron/gnss/Server.hh"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include "acheron/core/Log.hh"
#include "acheron/gnss/Convert.hh"
#include "acheron/ublox_control.grpc.pb.h"

namespace acheron::gnss {
namespace pb = ::ubloxcontrol;

namespace {

std::shared_ptr<grpc::ServerCredentials> credentials(const ServerTls& tls) {
  if (tls.cert_file.empty() != tls.key_file.empty())
    throw SetupError(
        "TLS needs both a certificate and its private key (--tls-cert and --tls-key); give both "
        "or neither");
  if (tls.cert_file.empty()) {
    if (!tls.client_ca_file.empty())
      throw SetupError(
          "a client CA (--tls-client-ca) needs TLS: give the server's --tls-cert and --tls-key");
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions options(
      tls.client_ca_file.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                 : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_key_cert_pairs.push_back(
      {read_pem_file(tls.key_file, "private key"), read_pem_file(tls.cert_file, "certificate")});
  if (!tls.client_ca_file.empty())
    options.pem_root_certs = read_pem_file(tls.client_ca_file, "client CA");
  return grpc::SslServerCredentials(options);
}

grpc::Status to_status(const Failure& e) {
  return {static_cast<grpc::StatusCode>(static_cast<int>(e.code())), e.what()};
}

void fill_response(const hub::Sample& s, pb::CaptureUbloxResponse* r) {
  r->set_type(pb::CaptureUbloxResponse::DATA);
  r->set_name(s.key);
  if (const Array* frame = s.payload.find(kFrameArray)) {
    r->set_payload(reinterpret_cast<const char*>(frame->buffer().data()), frame->nbytes());
  }
  if (auto it = s.payload.meta.find("parsed"); it != s.payload.meta.end()) {
    json_to_struct(*it, r->mutable_parsed_data());
  }
  const std::int64_t ns = s.payload.meta.value("wall_ns", s.wall_ns);
  auto* ts = r->mutable_pkt_unix_timestamp();
  ts->set_seconds(ns / 1'000'000'000);
  ts->set_nanos(static_cast<int>(ns % 1'000'000'000));
}

}  // namespace

class UbloxControlServer::Impl final : public pb::UbloxControl::Service {
 public:
  explicit Impl(UbloxService& service) : service_(service) {}

  grpc::Status InitF9t(grpc::ServerContext*, const pb::InitF9tRequest* req,
                       pb::InitF9tResponse* resp) override {
    try {
      const nlohmann::json config = struct_to_json(req->f9t_config());
      const std::string message = service_.init(config, req->force_init());
      resp->set_init_status(pb::InitF9tResponse::SUCCESS);
      resp->set_message(message);
      *resp->mutable_f9t_config() = req->f9t_config();
      return grpc::Status::OK;
    } catch (const Failure& e) {
      log::info("gnss: InitF9t failed: {}", e.what());
      return to_status(e);
    } catch (const std::exception& e) {
      log::error("gnss: InitF9t: {}", e.what());
      return {grpc::StatusCode::INTERNAL, std::string("Initialization failed: ") + e.what()};
    }
  }

  grpc::Status PollMessage(grpc::ServerContext*, const pb::PollRequest*,
                           pb::PollResponse*) override {
    return {grpc::StatusCode::UNIMPLEMENTED, "PollMessage is not implemented; use CaptureUblox."};
  }

  grpc::Status CaptureUblox(grpc::ServerContext* ctx, const pb::CaptureUbloxRequest* req,
                            grpc::ServerWriter<pb::CaptureUbloxResponse>* writer) override {
    Capture cap;
    try {
      cap = service_.capture({req->patterns().begin(), req->patterns().end()}, ctx->peer());
    } catch (const Failure& e) {
      return to_status(e);
    }
    log::info("gnss: capture client {} connected", ctx->peer());
    auto& sub = *cap.subscription;
    pb::CaptureUbloxResponse resp;
    bool client_gone = false;
    while (!ctx->IsCancelled()) {
      auto s = sub.next(std::chrono::milliseconds(100));
      if (!s) {
        if (sub.closed()) break;
        continue;
      }
      resp.Clear();
      fill_response(**s, &resp);
      if (!writer->Write(resp)) {
        client_gone = true;
        break;
      }
    }
    sub.close();
    log::info("gnss: capture client {} done ({} sent, {} dropped)", ctx->peer(),
              sub.stats().delivered, sub.stats().dropped);
    if (client_gone || ctx->IsCancelled()) return grpc::Status::CANCELLED;
    const StreamEnd end = cap.session->end();
    return {static_cast<grpc::StatusCode>(static_cast<int>(end.code)),
            end.code == StatusCode::ok ? "" : end.message};
  }

 private:
  UbloxService& service_;
};

UbloxControlServer::UbloxControlServer(ServerOptions options)
    : options_(std::move(options)), service_(std::make_unique<UbloxService>(options_.service)) {
  if (options_.max_threads < 2)
    throw SetupError("max_threads must be at least 2 (one thread polls for calls); raise it");
  if (options_.max_streams_per_connection < 1)
    throw SetupError("max_streams_per_connection must be at least 1");
  if (options_.max_receive_message_bytes < 4096)
    throw SetupError(
        "max_receive_message_bytes must be at least 4096 (an InitF9t configuration needs a few "
        "KiB)");
  const auto tcp_credentials = credentials(options_.tls);
  impl_ = std::make_unique<Impl>(*service_);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  grpc::ResourceQuota quota("ubloxcontrol");
  quota.SetMaxThreads(options_.max_threads);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options_.max_streams_per_connection);
  builder.SetMaxReceiveMessageSize(options_.max_receive_message_bytes);
  builder.AddListeningPort(options_.bind, tcp_credentials, &port_);
  builder.RegisterService(impl_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    throw SetupError("cannot listen on " + options_.bind + " (address in use or invalid" +
                     (options_.tls.cert_file.empty()
                          ? std::string{}
                          : ", or the TLS certificate and key do not match") +
                     ") pick another --bind");
  }
}

UbloxControlServer::~UbloxControlServer() {
  shutdown();
}

std::string UbloxControlServer::address() const {
  std::string host = options_.bind.substr(0, options_.bind.rfind(':'));
  if (wildcard()) host = "localhost";
  return host + ":" + std::to_string(port_);
}

std::string UbloxControlServer::bound_address() const {
  return options_.bind.substr(0, options_.bind.rfind(':')) + ":" + std::to_string(port_);
}

bool UbloxControlServer::wildcard() const {
  const std::string host = options_.bind.substr(0, options_.bind.rfind(':'));
  return host == "[::]" || host == "0.0.0.0" || host.empty();
}

void UbloxControlServer::wait() {
  if (server_) server_->Wait();
}

void UbloxControlServer::shutdown() {
  if (shut_.exchange(true)) return;
  service_->stop("server shutting down");
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + options_.shutdown_grace);
  }
}

}  // namespace acheron::gnss
