// The DaqData server's lifecycle: listeners, limits and threads at start,
// the graceful shutdown (spec 5.4), and the Server facade over Impl.
#include "acheron/daq/ServerImpl.hh"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "acheron/core/Error.hh"
#include "acheron/core/ThreadPool.hh"

namespace acheron::daq {

namespace {

// Credentials of the TCP listener: TLS from PEM files, or plaintext.
std::shared_ptr<grpc::ServerCredentials> tcp_credentials(const ServerConfig& c) {
  if (c.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      c.tls_client_ca_file.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                   : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_key_cert_pairs.push_back({read_pem_file(c.tls_key_file, "private key"),
                                        read_pem_file(c.tls_cert_file, "certificate")});
  if (!c.tls_client_ca_file.empty())
    options.pem_root_certs = read_pem_file(c.tls_client_ca_file, "client CA");
  return grpc::SslServerCredentials(options);
}

}  // namespace

// ------------------------------------------------------------------ lifecycle

void Server::Impl::start() {
  ::signal(SIGPIPE, SIG_IGN);  // FIFO and socket writers get EPIPE instead
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Limits (docs/daq.md, "Limits and security"). The thread quota bounds the
  // threads of synchronous methods (server reflection); beyond it a call gets
  // RESOURCE_EXHAUSTED. Streams per connection are an HTTP/2 setting: calls
  // beyond it wait in the client, so it sits above the application's limits.
  grpc::ResourceQuota quota("daqdata");
  quota.SetMaxThreads(config_.grpc_max_threads);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, config_.streams_per_connection());
  builder.SetMaxReceiveMessageSize(config_.max_receive_message_bytes);
  if (!config_.tcp_address.empty())
    builder.AddListeningPort(config_.tcp_address, tcp_credentials(config_), &tcp_port_);
  const auto unix_path = config_.unix_socket_path();
  if (!unix_path.empty()) {
    struct stat st {};
    if (::lstat(unix_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(unix_path.c_str());
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(unix_path).parent_path(), ec);
    builder.AddListeningPort(config_.unix_domain_socket, grpc::InsecureServerCredentials());
  }
  builder.RegisterService(this);
  stream_cq_ = builder.AddCompletionQueue();
  server_ = builder.BuildAndStart();
  if (!server_)
    throw SetupError(fmt::format(
        "cannot listen on {}{}{} (address in use or not permitted{}); choose other addresses",
        config_.tcp_address, config_.tcp_address.empty() ? "" : " and ", config_.unix_domain_socket,
        config_.tls_cert_file.empty() ? "" : ", or the TLS certificate and key do not match"));
  if (!config_.tcp_address.empty() && tcp_port_ == 0)
    throw SetupError(fmt::format("cannot listen on TCP {} (address in use?)", config_.tcp_address));
  if (auto* health = server_->GetHealthCheckService())
    health->SetServingStatus("daqdata.DaqData", true);
  dispatcher_ = std::thread([this] {
    set_thread_name("daq-dispatch");
    dispatch_loop();
  });
  accept_stream();
  stream_thread_ = std::thread([this] {
    set_thread_name("daq-streams");
    stream_loop();
  });
  init_thread_ = std::thread([this] {
    set_thread_name("daq-init");
    init_loop();
  });
}

void Server::Impl::shutdown() {
  std::call_once(shutdown_once_, [this] {
    std::vector<Reader*> to_finish;
    std::vector<Uploader*> uploads;
    {
      std::lock_guard lock(mutex_);
      shutting_down_ = true;
      hp_io_valid_ = false;
      for (auto* r : readers_) {
        if (r->state_ == Reader::State::idle) {
          r->state_ = Reader::State::finishing;
          to_finish.push_back(r);
        } else if (r->state_ == Reader::State::writing && !r->pending_finish_) {
          r->pending_finish_ = grpc::Status(grpc::StatusCode::CANCELLED, kReaderShutdown);
        }
      }
      // An upload waiting for its next message has nothing in progress:
      // it ends now.
      for (auto* u : uploaders_) {
        if (u->finishing_) continue;
        u->finishing_ = true;
        ++u->refs_;
        uploads.push_back(u);
      }
    }
    for (auto* r : to_finish) r->Finish(grpc::Status(grpc::StatusCode::CANCELLED, kReaderShutdown));
    for (auto* u : uploads) {
      u->Finish(grpc::Status(grpc::StatusCode::CANCELLED, kShutdownMessage));
      uploader_unref(u);
    }
    {
      std::lock_guard writer(writer_mutex_);
      if (hp_io_) hp_io_->stop();
      hp_io_.reset();
    }
    // The grace period is for work in progress: streams finishing their
    // current write, an InitHpIo. Once none is left, calls that
    // are finished on this side (a client may hold its channel open without
    // acknowledging) need not hold the process for the whole period.
    const auto grace_end = Clock::now() + seconds(config_.shutdown_grace_period);
    {
      std::unique_lock lock(mutex_);
      auto busy = [&] {
        if (writers_pending_ > 0) return true;
        for (auto* r : readers_)
          if (r->state_ != Reader::State::finishing) return true;
        return false;
      };
      while (busy() && Clock::now() < grace_end) cv_.wait_for(lock, std::chrono::milliseconds(10));
    }
    if (server_) {
      if (auto* health = server_->GetHealthCheckService())
        health->SetServingStatus("daqdata.DaqData", false);
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    }
    if (stream_thread_.joinable()) {
      // Shutdown cancelled every call: their last events arrive at once. The
      // queue closes when no Reader is left to start an operation on it.
      {
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, std::chrono::seconds(5), [&] { return stream_objects_ == 0; });
        if (stream_objects_ != 0)
          log::error("daq: {} streams still open at shutdown", stream_objects_);
      }
      stream_cq_->Shutdown();
      stream_thread_.join();
    }
    {
      std::lock_guard lock(mutex_);
      stop_dispatch_ = true;
    }
    cv_.notify_all();
    if (dispatcher_.joinable()) dispatcher_.join();
    {
      std::lock_guard lock(mutex_);
      stop_init_ = true;  // calls still queued are answered CANCELLED
    }
    init_cv_.notify_all();
    if (init_thread_.joinable()) init_thread_.join();
    if (server_) server_->Wait();
    const auto unix_path = config_.unix_socket_path();
    if (!unix_path.empty()) ::unlink(unix_path.c_str());
    {
      std::lock_guard lock(done_mutex_);
      done_ = true;
    }
    done_cv_.notify_all();
  });
}

// ------------------------------------------------------------------ Server

Server::Server(ServerConfig config) {
  validate_limits(config);
  impl_ = std::make_unique<Impl>(std::move(config));
}
Server::~Server() {
  if (impl_) impl_->shutdown();
}

void Server::start() {
  impl_->start();
  if (impl_->config_.init_from_default) {
    HpIoConfig c = parse_hp_io_config(default_hp_io_config_json());
    if (!impl_->config_.default_hp_io_config_file.empty()) {
      std::filesystem::path p = impl_->config_.default_hp_io_config_file;
      if (!std::filesystem::exists(p) && std::filesystem::exists("daq_data/config" / p))
        p = "daq_data/config" / p;
      c = load_hp_io_config(p);
    }
    auto r = impl_->init_hp_io(c);
    if (r.code != 0 || !r.success) log::error("daq: the default InitHpIo failed: {}", r.message);
  }
}

int Server::tcp_port() const {
  return impl_->tcp_port_;
}
void Server::shutdown() {
  impl_->shutdown();
}
void Server::wait() {
  impl_->wait();
}
Server::InitResult Server::init_hp_io(const HpIoConfig& config) {
  return impl_->init_hp_io(config);
}
ImageStore& Server::store() {
  return impl_->store_;
}
const ServerConfig& Server::config() const {
  return impl_->config_;
}

ServerStats Server::stats() const {
  std::lock_guard lock(impl_->mutex_);
  return {
      impl_->readers_.size(),   impl_->images_sent_.load(),      impl_->hp_io_valid_,
      impl_->uploaders_.size(), impl_->streams_accepted_.load(), impl_->streams_refused_.load()};
}

std::vector<StreamClient> Server::clients() const {
  std::lock_guard lock(impl_->mutex_);
  std::vector<StreamClient> out;
  out.reserve(impl_->readers_.size());
  for (const Reader* r : impl_->readers_) {
    out.push_back({r->peer_, r->movie_, r->ph_, r->modules_,
                   std::chrono::duration<double>(r->interval_).count()});
  }
  return out;
}

}  // namespace acheron::daq
