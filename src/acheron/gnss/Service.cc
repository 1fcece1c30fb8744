#include "acheron/gnss/Service.hh"

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>

#include <filesystem>

#include "acheron/core/Log.hh"

namespace acheron::gnss {
namespace ubx = wire::ubx;
namespace {

[[noreturn]] void fail(StatusCode code, const std::string& message) {
  throw Failure(code, message);
}

constexpr const char* kSuccess = "F9T initialized, configured, and verified successfully.";

}  // namespace

bool device_allowed(const std::string& path, const std::vector<std::string>& globs) {
  namespace fs = std::filesystem;
  auto matches = [&](const std::string& p) {
    return std::any_of(globs.begin(), globs.end(), [&](const std::string& g) {
      return ::fnmatch(g.c_str(), p.c_str(), 0) == 0;
    });
  };
  if (path.empty() || path.find('\0') != std::string::npos || path.front() != '/') return false;
  const std::string lexical = fs::path(path).lexically_normal().string();
  if (!matches(lexical)) return false;
  std::error_code ec;
  const fs::path real = fs::canonical(lexical, ec);
  // A path that does not exist stays allowed (the caller reports it missing);
  // one that exists must resolve to an allowed place.
  return ec ? true : matches(real.string());
}

StreamEnd IoSession::end() const {
  std::lock_guard lock(mutex_);
  return end_;
}

UbloxService::UbloxService(ServiceOptions options)
    : options_(std::move(options)),
      topic_("ubx", {.doc = "UBX messages of the F9T, keyed by identity"}) {
  if (options_.max_read_queue_size == 0) {
    throw SetupError(
        "max_read_queue_size is 0 (a client could receive nothing) set it to 1 or more");
  }
}

UbloxService::~UbloxService() {
  stop("server shutting down");
}

std::optional<Pattern> UbloxService::anchored_pattern(const std::vector<std::string>& patterns) {
  if (patterns.empty()) return std::nullopt;
  auto p = Pattern::any_prefix(patterns);
  if (!p) {
    fail(StatusCode::invalid_argument,
         "CaptureUblox: " + p.error().message + "; use a regular expression such as \"TIM-.*\"");
  }
  return std::move(*p);
}

bool UbloxService::io_running() const {
  std::lock_guard lock(session_mutex_);
  return session_ && session_->running();
}

std::size_t UbloxService::active_captures() const {
  std::lock_guard lock(session_mutex_);
  if (!session_ || !session_->running()) return 0;
  std::size_t n = 0;
  for (const auto& w : session_->subscriptions_) {
    if (auto s = w.lock(); s && !s->closed()) ++n;
  }
  return n;
}

ServiceStats UbloxService::stats() const {
  ServiceStats out;
  {
    std::lock_guard lock(stats_mutex_);
    prune_captures_locked();
    out = stats_;
    for (const auto& c : captures_) {
      const auto st = c.subscription->stats();
      out.captures.push_back(
          {c.peer, c.patterns, st.delivered, st.dropped, c.subscription->pending()});
      out.capture_delivered += st.delivered;
      out.capture_dropped += st.dropped;
    }
  }
  out.io_running = io_running();
  return out;
}

void UbloxService::prune_captures_locked() const {
  std::erase_if(captures_, [&](const CaptureRecord& c) {
    if (!c.subscription->closed()) return false;
    const auto st = c.subscription->stats();
    stats_.capture_delivered += st.delivered;
    stats_.capture_dropped += st.dropped;
    return true;
  });
}

void UbloxService::set_observer(MessageObserver observer) {
  auto p = observer ? std::make_shared<const MessageObserver>(std::move(observer)) : nullptr;
  std::lock_guard lock(stats_mutex_);
  observer_ = std::move(p);
}

void UbloxService::publish(ReceivedFrame&& f) {
  Payload p;
  p.meta["parsed"] = ubx::parsed_fields(f.frame);
  p.meta["wall_ns"] = f.wall_ns;
  std::shared_ptr<const MessageObserver> observer;
  {
    std::lock_guard lock(stats_mutex_);
    observer = observer_;
  }
  if (observer) {
    (*observer)(ubx::identity(f.frame.message_id()), p.meta["parsed"], f.wall_ns);
  }
  std::vector<std::uint8_t> bytes = f.frame.bytes();
  p.arrays.push_back(Array::from_vector(std::move(bytes), {}, kFrameArray));
  topic_.publish(ubx::identity(f.frame.message_id()), std::move(p));
}

void UbloxService::stop_session_locked(StatusCode code, const std::string& why) {
  if (!session_) return;
  {
    std::lock_guard lock(session_->mutex_);
    if (session_->running_) session_->end_ = {code, why};
  }
  session_->stop_ = true;
  session_->running_ = false;
  for (auto& w : session_->subscriptions_) {
    if (auto s = w.lock()) s->close();
  }
  session_->subscriptions_.clear();
}

void UbloxService::stop(const std::string& why) {
  std::shared_ptr<IoSession> old;
  {
    std::lock_guard lock(session_mutex_);
    stop_session_locked(StatusCode::ok, why);
    old = std::move(session_);
  }
  if (old && old->reader_.joinable()) old->reader_.join();
}

Capture UbloxService::capture(const std::vector<std::string>& patterns, std::string peer) {
  hub::SubscriptionOptions o;
  o.key_pattern = anchored_pattern(patterns);
  o.mode = hub::DeliveryMode::queue;
  o.queue_capacity = options_.max_read_queue_size;
  o.when_full = hub::QueueFull::drop_newest;  // ublox.md §5: a full queue drops the new packet
  o.snapshot_first = true;
  std::lock_guard lock(session_mutex_);
  if (!session_ || !session_->running()) {
    fail(StatusCode::failed_precondition, "F9T is not initialized or I/O is not running.");
  }
  auto sub = topic_.subscribe(std::move(o));
  session_->subscriptions_.push_back(sub);
  {
    std::lock_guard stats_lock(stats_mutex_);
    prune_captures_locked();
    captures_.push_back({sub, std::move(peer), patterns});
  }
  return {sub, session_};
}

void UbloxService::reader_loop(std::shared_ptr<IoSession> session,
                               std::unique_ptr<UbxDevice> device) {
  const std::string path = device->path();
  while (!session->stop_) {
    try {
      if (auto f = device->read(deadline_after(std::chrono::milliseconds(100))))
        publish(std::move(*f));
    } catch (const Failure& e) {
      log::warn("gnss: {}", e.what());
      std::lock_guard lock(session_mutex_);
      if (session_ == session) {
        stop_session_locked(StatusCode::unavailable,
                            std::string(e.what()) +
                                ". The capture stream ended; call InitF9t to initialize again.");
      }
      return;
    }
  }
}

void UbloxService::configure(UbxDevice& device, const F9tConfig& config) {
  const SettingGroups groups = group_settings(config);
  auto write_group = [&](const std::vector<CfgSetting>& group) {
    const std::size_t chunks = (group.size() + ubx::kMaxCfgItems - 1) / ubx::kMaxCfgItems;
    for (std::size_t c = 0; c < chunks; ++c) {
      ubx::CfgValset m;
      m.layers = config.apply_layers;
      if (chunks > 1) {  // more than 64 keys: one transaction
        m.version = 1;
        m.transaction = c == 0 ? 1 : c + 1 == chunks ? 3 : 2;
      }
      const std::size_t end = std::min(group.size(), (c + 1) * ubx::kMaxCfgItems);
      for (std::size_t i = c * ubx::kMaxCfgItems; i < end; ++i)
        m.items.push_back({group[i].key->id, group[i].raw});
      const AckResult r = device.command(ubx::encode_cfg_valset(m), options_.ack_timeout);
      if (r != AckResult::ack) {
        log::warn("gnss: CFG-VALSET of {} keys {}", m.items.size(),
                  r == AckResult::nak ? "NAKed" : "not acknowledged");
        fail(StatusCode::internal,
             "Initialization failed: One or more configuration messages were NAKed.");
      }
    }
  };
  write_group(groups.signal);
  if (!groups.signal.empty() && !groups.other.empty())
    std::this_thread::sleep_for(options_.signal_pause);
  write_group(groups.other);

  // Verify every item on the verify layer.
  std::vector<std::string> mismatches;
  for (std::size_t off = 0; off < config.settings.size(); off += ubx::kMaxCfgItems) {
    const std::size_t end = std::min(config.settings.size(), off + ubx::kMaxCfgItems);
    std::vector<std::uint32_t> keys;
    for (std::size_t i = off; i < end; ++i) keys.push_back(config.settings[i].key->id);
    const auto got =
        device.valget(keys, config.verify_layer, options_.valget_timeout, options_.valget_quiet);
    for (std::size_t i = off; i < end; ++i) {
      const CfgSetting& s = config.settings[i];
      const auto it = got.find(s.key->id);
      if (it != got.end() && it->second == s.raw) continue;
      mismatches.push_back(
          "Key: " + std::string(s.key->name) + ", Wanted: " + format_value(s.key->type, s.raw) +
          ", Got: " + (it == got.end() ? "None" : format_value(s.key->type, it->second)));
    }
  }
  if (!mismatches.empty()) {
    std::string msg = "Initialization failed: Configuration verification failed for " +
                      std::to_string(mismatches.size()) + " items on layer " +
                      config.verify_layer_name + ":";
    for (const auto& m : mismatches) msg += "\n" + m;
    fail(StatusCode::internal, msg);
  }
}

std::string UbloxService::init(const nlohmann::json& config_json, bool force) {
  try {
    std::string message = run_init(config_json, force);
    std::lock_guard lock(stats_mutex_);
    ++stats_.inits_ok;
    return message;
  } catch (const std::exception& e) {
    std::lock_guard lock(stats_mutex_);
    ++stats_.inits_failed;
    stats_.last_failure = e.what();
    throw;
  }
}

std::string UbloxService::run_init(const nlohmann::json& config_json, bool force) {
  std::lock_guard init_lock(init_mutex_);
  // 0. Gate: do not cut off clients unless asked to.
  if (!force) {
    // A client that has just gone away is noticed by its stream within
    // 0.1 s: give such streams that long to end before refusing.
    const auto settle = deadline_after(std::chrono::milliseconds(250));
    while (active_captures() > 0 && Clock::now() < settle) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (const std::size_t n = active_captures(); n > 0) {
      fail(StatusCode::failed_precondition, "Cannot initiate F9T while " + std::to_string(n) +
                                                " clients are connected. Use force_init=True to "
                                                "end their streams and initialize anyway.");
    }
  }
  // Validate before touching anything: a bad request leaves running I/O alone.
  const F9tConfig config = parse_f9t_config(config_json);

  // 1. Stop reading; open streams end with OK.
  stop("F9T is being re-initialized");

  // 2. The device: only where the operator allows (the same reply for a
  // forbidden path whether or not it exists).
  if (!device_allowed(config.device, options_.allowed_devices)) {
    fail(StatusCode::invalid_argument,
         "Device path " + escaped(config.device) +
             " is not an allowed serial device (the server's allowed_devices; the default "
             "allows /dev/tty*, /dev/pts/* and /dev/serial/*).");
  }
  struct stat st {};
  if (::stat(config.device.c_str(), &st) != 0) {
    fail(StatusCode::invalid_argument, "Device path " + config.device + " does not exist.");
  }
  if (!S_ISCHR(st.st_mode)) {
    fail(StatusCode::invalid_argument,
         "Device path " + config.device +
             " is not a character device (a serial port or pseudo-terminal is needed).");
  }
  const std::string absolute = std::filesystem::absolute(config.device).string();
  std::unique_ptr<UbxDevice> device;
  try {
    device = std::make_unique<UbxDevice>(SerialPort(config.device, config.baud));
  } catch (const Failure& e) {
    fail(StatusCode::unavailable,
         "Could not connect to device " + absolute + ". (" + e.what() + ")");
  }
  device->set_sink([this](ReceivedFrame&& f) { publish(std::move(f)); });
  std::string model_name;

  try {
    // 3. Model.
    auto ver = device->poll(ubx::kMonVer, options_.mon_ver_timeout);
    if (!ver) fail(StatusCode::internal, "Initialization failed: No MON-VER response");
    auto mon = ubx::decode_mon_ver(ver->payload());
    const std::string model = mon ? mon->model() : "UNKNOWN";
    model_name = model;
    if (!model.starts_with(options_.expected_model_prefix)) {
      fail(StatusCode::invalid_argument, "Model " + model + " does not match expected prefix " +
                                             options_.expected_model_prefix + ".");
    }
    // 4. Unique id.
    auto uid_frame = device->poll(ubx::kSecUniqid, options_.uniqid_timeout);
    if (!uid_frame) fail(StatusCode::internal, "Initialization failed: No SEC-UNIQID response");
    auto uid = ubx::decode_sec_uniqid(uid_frame->payload());
    if (!uid) fail(StatusCode::internal, "Initialization failed: " + uid.error().message);
    if (uid->unique_id_hex() != config.uid) {
      fail(StatusCode::invalid_argument, "Detected F9T UID " + uid->unique_id_hex() +
                                             " does not match client UID " + config.uid + ".");
    }
    // 5-7. Configuration, written and verified.
    configure(*device, config);
  } catch (const Failure& e) {
    if (e.code() == StatusCode::unavailable) {
      fail(StatusCode::unavailable, std::string("Initialization failed: ") + e.what());
    }
    throw;
  }

  {
    std::lock_guard lock(stats_mutex_);
    stats_.device = absolute;
    stats_.uid = config.uid;
    stats_.model = model_name;
  }
  // 8. Start reading.
  auto session = std::make_shared<IoSession>();
  {
    std::lock_guard lock(session_mutex_);
    session_ = session;
    session->reader_ = std::thread(&UbloxService::reader_loop, this, session, std::move(device));
  }
  log::info("gnss: F9T {} on {} initialized ({} items on {}, verified on {})", config.uid,
            config.device, config.settings.size(), config.apply_layer_names,
            config.verify_layer_name);
  return kSuccess;
}

}  // namespace acheron::gnss
