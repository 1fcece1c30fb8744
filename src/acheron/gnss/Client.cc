#include "acheron/gnss/Client.hh"

#include <grpcpp/grpcpp.h>

#include <mutex>

#include "acheron/core/Error.hh"
#include "acheron/gnss/Config.hh"
#include "acheron/gnss/Convert.hh"
#include "acheron/ublox_control.grpc.pb.h"

namespace acheron::gnss {

namespace {
[[noreturn]] void throw_status(const grpc::Status& st) {
  throw Failure(static_cast<StatusCode>(static_cast<int>(st.error_code())), st.error_message());
}
std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const ClientTls& tls) {
  if (!tls.enabled()) return grpc::InsecureChannelCredentials();
  if (tls.cert_file.empty() != tls.key_file.empty())
    throw SetupError(
        "a TLS client certificate needs its private key (--tls-cert and --tls-key); give both or "
        "neither");
  grpc::SslCredentialsOptions options;
  if (!tls.ca_file.empty()) options.pem_root_certs = read_pem_file(tls.ca_file, "CA");
  if (!tls.cert_file.empty()) {
    options.pem_cert_chain = read_pem_file(tls.cert_file, "client certificate");
    options.pem_private_key = read_pem_file(tls.key_file, "client key");
  }
  return grpc::SslCredentials(options);
}
std::chrono::system_clock::time_point grpc_deadline(Duration d) {
  if (d >= std::chrono::hours(24 * 365)) return std::chrono::system_clock::time_point::max();
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
}
}  // namespace

class UbloxClient::Impl {
 public:
  Impl(const std::string& target, const ClientTls& tls)
      : channel(grpc::CreateChannel(target, channel_credentials(tls))),
        stub(ubloxcontrol::UbloxControl::NewStub(channel)) {}
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<ubloxcontrol::UbloxControl::Stub> stub;
  std::mutex mutex;
  grpc::ClientContext* active = nullptr;  // the running capture, for cancel()
  bool cancelled = false;
};

UbloxClient::UbloxClient(const std::string& target, const ClientTls& tls)
    : impl_(std::make_unique<Impl>(target, tls)) {}
UbloxClient::~UbloxClient() = default;

std::string UbloxClient::init(const nlohmann::json& config, bool force, Duration timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(grpc_deadline(timeout));
  ubloxcontrol::InitF9tRequest req;
  json_to_struct(config, req.mutable_f9t_config());
  req.set_force_init(force);
  ubloxcontrol::InitF9tResponse resp;
  const auto st = impl_->stub->InitF9t(&ctx, req, &resp);
  if (!st.ok()) throw_status(st);
  return resp.message();
}

void UbloxClient::capture(const std::vector<std::string>& patterns,
                          const std::function<bool(const CapturedMessage&)>& on_message,
                          Duration duration) {
  grpc::ClientContext ctx;
  if (duration != Duration::max()) ctx.set_deadline(grpc_deadline(duration));
  ubloxcontrol::CaptureUbloxRequest req;
  for (const auto& p : patterns) req.add_patterns(p);
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->cancelled) return;
    impl_->active = &ctx;
  }
  struct Clear {
    Impl* impl;
    ~Clear() {
      std::lock_guard lock(impl->mutex);
      impl->active = nullptr;
    }
  } clear{impl_.get()};
  auto reader = impl_->stub->CaptureUblox(&ctx, req);
  ubloxcontrol::CaptureUbloxResponse r;
  bool stopped = false;
  while (reader->Read(&r)) {
    CapturedMessage m;
    m.name = r.name();
    m.parsed = struct_to_json(r.parsed_data());
    m.frame.assign(r.payload().begin(), r.payload().end());
    m.unix_ns = r.pkt_unix_timestamp().seconds() * 1'000'000'000 + r.pkt_unix_timestamp().nanos();
    if (!on_message(m)) {
      stopped = true;
      ctx.TryCancel();
      break;
    }
  }
  const auto st = reader->Finish();
  if (stopped || st.ok()) return;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->cancelled) return;
  }
  if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && duration != Duration::max()) return;
  throw_status(st);
}

void UbloxClient::cancel() {
  std::lock_guard lock(impl_->mutex);
  impl_->cancelled = true;
  if (impl_->active) impl_->active->TryCancel();
}

}  // namespace acheron::gnss
