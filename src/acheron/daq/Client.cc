#include "acheron/daq/Client.hh"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <fmt/format.h>

#include <chrono>

#include "acheron/core/Clock.hh"
#include "acheron/core/Error.hh"
#include "acheron/daqdata.grpc.pb.h"

namespace acheron::daq {

namespace pff = wire::pff;

namespace {
std::chrono::system_clock::time_point deadline(double seconds) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(
             std::chrono::duration<double>(seconds));
}

[[noreturn]] void fail(const grpc::Status& s, std::string_view what) {
  throw Failure(static_cast<StatusCode>(s.error_code()),
                fmt::format("{}: {} ({})", what, s.error_message(), int(s.error_code())));
}
}  // namespace

std::string resolve_target(const std::string& address) {
  if (address.rfind("unix:", 0) == 0) return address;
  if (address.find(':') == std::string::npos) return address + ":50051";
  return address;
}

Client::Client(const std::string& address, const ClientTls& tls)
    : target_(resolve_target(address)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (tls.enabled() && target_.rfind("unix:", 0) != 0) {
    if (tls.cert_file.empty() != tls.key_file.empty())
      throw SetupError(
          "a TLS client certificate needs its private key (--tls-cert and --tls-key); give both "
          "or neither");
    grpc::SslCredentialsOptions options;
    if (!tls.ca_file.empty()) options.pem_root_certs = read_pem_file(tls.ca_file, "CA");
    if (!tls.cert_file.empty()) {
      options.pem_cert_chain = read_pem_file(tls.cert_file, "client certificate");
      options.pem_private_key = read_pem_file(tls.key_file, "client key");
    }
    credentials = grpc::SslCredentials(options);
  }
  channel_ = grpc::CreateCustomChannel(target_, credentials, args);
}

Client::~Client() = default;

bool Client::ping(double timeout_seconds, bool wait_for_ready) {
  auto stub = daqdata::DaqData::NewStub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline(timeout_seconds));
  ctx.set_wait_for_ready(wait_for_ready);
  google::protobuf::Empty req, resp;
  return stub->Ping(&ctx, req, &resp).ok();
}

bool Client::init_hp_io(const HpIoConfig& c, double timeout_seconds, std::string* error_message) {
  auto stub = daqdata::DaqData::NewStub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline(timeout_seconds));
  daqdata::InitHpIoRequest req;
  req.set_data_dir(c.data_dir.string());
  req.set_update_interval_seconds(c.update_interval_seconds);
  req.set_force(c.force);
  req.set_simulate_daq(c.simulate_daq);
  for (auto m : c.module_ids) req.add_module_ids(m);
  daqdata::InitHpIoResponse resp;
  auto s = stub->InitHpIo(&ctx, req, &resp);
  if (!s.ok()) fail(s, "InitHpIo");
  if (error_message) *error_message = resp.error_message();
  return resp.success();
}

std::pair<int, std::string> Client::stream(
    const StreamOptions& o, const std::function<bool(daqdata::StreamImagesResponse&)>& on_image) {
  auto stub = daqdata::DaqData::NewStub(channel_);
  grpc::ClientContext ctx;
  if (o.timeout_seconds > 0) ctx.set_deadline(deadline(o.timeout_seconds));
  daqdata::StreamImagesRequest req;
  req.set_stream_movie_data(o.movie);
  req.set_stream_pulse_height_data(o.pulse_height);
  req.set_update_interval_seconds(o.update_interval_seconds);
  for (auto m : o.module_ids) req.add_module_ids(m);
  {
    std::lock_guard lock(mutex_);
    if (cancelled_) return {int(grpc::StatusCode::CANCELLED), "cancelled"};
    streaming_ = &ctx;
  }
  auto reader = stub->StreamImages(&ctx, req);
  daqdata::StreamImagesResponse resp;
  while (reader->Read(&resp)) {
    if (!on_image(resp)) {
      ctx.TryCancel();
      break;
    }
  }
  auto status = reader->Finish();
  {
    std::lock_guard lock(mutex_);
    streaming_ = nullptr;
  }
  return {int(status.error_code()), status.error_message()};
}

void Client::cancel() {
  std::lock_guard lock(mutex_);
  cancelled_ = true;
  if (streaming_) streaming_->TryCancel();
}

void Client::upload(const std::function<bool(daqdata::PanoImage*)>& next) {
  auto stub = daqdata::DaqData::NewStub(channel_);
  grpc::ClientContext ctx;
  google::protobuf::Empty resp;
  auto writer = stub->UploadImages(&ctx, &resp);
  daqdata::UploadImageRequest req;
  while (next(req.mutable_pano_image())) {
    if (!writer->Write(req)) break;
    req.Clear();
  }
  writer->WritesDone();
  auto s = writer->Finish();
  if (!s.ok()) fail(s, "UploadImages");
}

bool image_to_pff(const daqdata::PanoImage& image, std::string* frame, pff::Product* product) {
  std::vector<std::uint32_t> shape(image.shape().begin(), image.shape().end());
  if (!daqdata::PanoImage::Type_IsValid(image.type())) return false;  // 258 is not MOVIE
  auto p = pff::product_from_props(static_cast<pff::ImageType>(image.type()), shape,
                                   image.bytes_per_pixel());
  if (!p) return false;
  const auto& info = pff::info(*p);
  if (static_cast<std::size_t>(image.image_array_size()) != info.pixels()) return false;
  const auto& fields = image.header().fields();
  // Header numbers come from the network: clamp before converting.
  auto num = [](const google::protobuf::Struct& s, const char* k, double hi) -> double {
    auto it = s.fields().find(k);
    if (it == s.fields().end()) return 0.0;
    const double v = it->second.number_value();
    return v >= 0 && v <= hi ? v : 0.0;  // NaN, negative, too large: 0
  };
  auto stamp = [&](const google::protobuf::Struct& s) {
    return pff::QuaboStamp{static_cast<std::uint32_t>(num(s, "pkt_num", 4294967295.0)),
                           static_cast<std::uint32_t>(num(s, "pkt_tai", 1023)),
                           static_cast<std::uint32_t>(num(s, "pkt_nsec", 999999999)),
                           static_cast<std::int64_t>(num(s, "tv_sec", 9999999999.0)),
                           static_cast<std::uint32_t>(num(s, "tv_usec", 999999))};
  };
  std::string header;
  if (fields.contains("quabo_0") && fields.contains("quabo_3")) {
    std::array<pff::QuaboStamp, 4> q;
    for (int i = 0; i < 4; ++i) {
      auto it = fields.find(fmt::format("quabo_{}", i));
      q[i] = it == fields.end() ? pff::QuaboStamp{} : stamp(it->second.struct_value());
    }
    header = pff::format_grouped_header(q);
  } else if (fields.contains("quabo_num")) {
    header = pff::format_ph256_header(static_cast<unsigned>(num(image.header(), "quabo_num", 9)),
                                      stamp(image.header()));
  } else {
    google::protobuf::util::MessageToJsonString(image.header(), &header);
    header += "\n\n";
  }
  std::string pixels(info.image_bytes(), '\0');
  for (std::size_t i = 0; i < info.pixels(); ++i) {
    const auto v = image.image_array(static_cast<int>(i));
    if (info.bytes_per_pixel == 1) {
      pixels[i] = static_cast<char>(v & 0xFF);
    } else {
      pixels[2 * i] = static_cast<char>(v & 0xFF);
      pixels[2 * i + 1] = static_cast<char>((v >> 8) & 0xFF);
    }
  }
  frame->clear();
  pff::append_frame(*frame, header,
                    {reinterpret_cast<const std::byte*>(pixels.data()), pixels.size()});
  *product = *p;
  return true;
}

}  // namespace acheron::daq
