#include "acheron/dcss/LoopDhs.hh"

#include <cmath>
#include <fstream>

#include "acheron/core/Log.hh"
#include "acheron/wire/Xos.hh"

namespace acheron::dcss {

using wire::xos::format_loop;

struct LoopDhs::Collect {
  OperationPtr op;
  int expected = 0;
  int next_index = 0;
  int answered = 0;
  bool stopped = false;
  bool done = false;
  TimePoint deadline;
  std::vector<std::optional<LoopResult>> results;
  std::filesystem::path dir;  // empty: not saving
  std::atomic<bool> stream_stop{false};
  std::string camera_failure;  // the MJPEG stream ended or failed before the collect was done
};

namespace {
bool loopback_name(const std::string& host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

AutomlOptions automl_options(const LoopConfig& c) {
  return {c.automl.host, c.automl.port, c.automl.model, c.automl.timeout_s,
          c.automl.health_interval_s};
}
AxisOptions axis_options(const LoopConfig& c) {
  return {c.axis.host, c.axis.port, c.axis.camera, c.axis.user, c.axis.password, c.axis.timeout_s};
}
}  // namespace

LoopDhs::LoopDhs(LoopConfig config, Dhs& dhs)
    : config_(std::move(config)),
      dhs_(dhs),
      automl_(automl_options(config_)),
      axis_(axis_options(config_)),
      classifiers_(std::make_unique<ThreadPool>(
          static_cast<std::size_t>(std::max(1, config_.automl.max_in_flight)))) {
  dhs_.add_operation("collectLoopImages", [this](const OperationPtr& op) { collect(op); });
  dhs_.add_operation("stopCollectLoopImages", [this](const OperationPtr& op) { stop_collect(op); });
  dhs_.add_operation("getLoopTip", [this](const OperationPtr& op) { loop_tip(op); });
  dhs_.add_operation("getLoopInfo", [this](const OperationPtr& op) { loop_info(op); });
  dhs_.add_operation("reboxLoopImage", [this](const OperationPtr& op) { rebox(op); });
  watchdog_ = std::thread([this] { watchdog(); });
}

LoopDhs::~LoopDhs() {
  shutdown();
}

void LoopDhs::start() {
  automl_.start_health_checks();
  if (config_.frame_source != "push") return;
  ensure_receiver();
  if (loopback_name(config_.jpeg_receiver.bind) && !loopback_name(config_.axis.host)) {
    log::warn(
        "loop: the JPEG receiver listens on {} only, so the Axis server at {} cannot POST to it; "
        "set loop.jpeg_receiver.bind to this host's address on the camera network",
        config_.jpeg_receiver.bind, config_.axis.host);
  }
}

void LoopDhs::shutdown() {
  std::shared_ptr<Collect> c;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    c = active_;
    if (c) end_locked(c);
  }
  cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  if (receiver_) receiver_->stop();
  std::vector<Stream> streams;
  {
    std::lock_guard lock(mutex_);
    streams.swap(streams_);
  }
  for (auto& s : streams) s.thread.join();
  classifiers_.reset();  // waits for classifications in flight (bounded by the HTTP timeout)
}

std::uint16_t LoopDhs::receiver_port() const {
  std::lock_guard lock(mutex_);
  return receiver_ && receiver_->running() ? receiver_->port() : 0;
}

bool LoopDhs::collecting() const {
  std::lock_guard lock(mutex_);
  return active_ != nullptr;
}

std::vector<std::optional<LoopResult>> LoopDhs::last_results() const {
  std::lock_guard lock(mutex_);
  return last_results_;
}

std::uint64_t LoopDhs::dropped_frames() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

void LoopDhs::ensure_receiver() {
  std::lock_guard lock(mutex_);
  if (receiver_ && receiver_->running()) return;
  receiver_ = std::make_unique<JpegReceiver>(
      config_.jpeg_receiver,
      [this](std::string image, std::string) { on_image(std::move(image)); });
  receiver_->start();  // throws SetupError if the port is taken
}

std::filesystem::path LoopDhs::debug_dir_for(const OperationPtr& op) const {
  if (!config_.save_image_files) return {};
  std::string handle = op->handle();
  for (auto& ch : handle) {
    if (ch == '.' || ch == '/') ch = '_';
  }
  return std::filesystem::path(config_.debug_dir) / (op->name() + handle);
}

void LoopDhs::save(const std::filesystem::path& file, const std::string& bytes,
                   SaveMode mode) const {
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  // Images replace a file of the same name (DCSS handles repeat after a DCSS
  // restart); results are appended line by line.
  std::ofstream out(
      file, std::ios::binary | (mode == SaveMode::append ? std::ios::app : std::ios::trunc));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) log::warn("loop: cannot write {} (saving debug files)", file.string());
}

// ------------------------------------------------------------ collect

void LoopDhs::collect(const OperationPtr& op) {
  if (config_.frame_source == "push") {
    try {
      ensure_receiver();
    } catch (const SetupError& e) {
      log::error("loop: {}", e.what());
      op->complete("error", "receiver_unavailable");
      return;
    }
  }
  auto c = std::make_shared<Collect>();
  c->op = op;
  c->expected = std::max(1, static_cast<int>(std::lround(config_.osci_time * config_.video_fps)));
  c->results.resize(static_cast<std::size_t>(c->expected));
  c->deadline = deadline_after(std::chrono::duration_cast<Duration>(
      std::chrono::duration<double>(config_.osci_time + config_.collect_grace_s)));
  c->dir = debug_dir_for(op);
  {
    std::lock_guard lock(mutex_);
    if (active_) {
      op->complete("error", "busy");
      return;
    }
    active_ = c;
    // Under the lock: no LOOP_INFO can precede the request to oscillate.
    op->update("start_oscillation");
  }
  cv_.notify_all();
  std::weak_ptr<Collect> weak = c;
  op->on_cancel([this, weak] {
    auto c = weak.lock();
    if (!c) return;
    std::lock_guard lock(mutex_);
    if (active_ != c) return;
    if (c->op->aborted()) {
      end_locked(c);  // already completed `aborted` (or the connection is gone)
    } else {
      c->stopped = true;  // stoh_stop_operation collectLoopImages
      maybe_finish_locked(c);
    }
  });
  if (config_.frame_source == "mjpeg") {
    std::lock_guard lock(mutex_);
    if (active_ == c && !stopping_) start_stream_locked(c);
  }
  log::info("loop: collectLoopImages {} expects {} frames ({})", op->handle(), c->expected,
            config_.frame_source == "mjpeg" ? "MJPEG stream" : "pushed JPEGs");
}

void LoopDhs::start_stream_locked(const std::shared_ptr<Collect>& c) {
  // Readers of earlier collects that have finished are joined here, so a
  // long-running DHS does not accumulate threads.
  for (auto it = streams_.begin(); it != streams_.end();) {
    if (it->finished->load()) {
      it->thread.join();
      it = streams_.erase(it);
    } else {
      ++it;
    }
  }
  auto finished = std::make_shared<std::atomic<bool>>(false);
  streams_.push_back(
      {std::thread([this, c, finished] {
         auto r = axis_.stream(
             [this, c](std::string jpeg) { return on_stream_frame(c, std::move(jpeg)); },
             c->stream_stop, config_.video_fps);
         on_stream_end(c, r ? "the MJPEG stream ended after " + std::to_string(*r) + " frames"
                            : r.error().message);
         *finished = true;
       }),
       finished});
}

bool LoopDhs::on_stream_frame(const std::shared_ptr<Collect>& c, std::string jpeg) {
  int index = 0;
  {
    std::lock_guard lock(mutex_);
    if (!take_frame_locked(c, &index)) return false;
  }
  if (!c->dir.empty()) save(c->dir / (std::to_string(index) + ".jpg"), jpeg, SaveMode::replace);
  classifiers_->submit([this, c, index, jpeg = std::move(jpeg)] { classify(c, index, jpeg); });
  std::lock_guard lock(mutex_);
  return active_ == c && !c->stopped && !c->done && c->next_index < c->expected;
}

void LoopDhs::on_stream_end(const std::shared_ptr<Collect>& c, const std::string& why) {
  std::lock_guard lock(mutex_);
  if (active_ != c || c->done || c->stopped || c->next_index >= c->expected || stopping_) return;
  // The camera stopped delivering before the collect had its frames: fail
  // once every frame taken is answered (its LOOP_INFO is still reported).
  log::warn("loop: collectLoopImages {}: camera stream lost after {} of {} frames ({})",
            c->op->handle(), c->next_index, c->expected, why);
  c->camera_failure = why;
  maybe_finish_locked(c);
}

bool LoopDhs::take_frame_locked(const std::shared_ptr<Collect>& c, int* index) {
  if (!c || active_ != c || c->stopped || c->done || !c->camera_failure.empty() ||
      c->next_index >= c->expected || stopping_) {
    ++dropped_;
    return false;
  }
  *index = c->next_index++;
  return true;
}

void LoopDhs::on_image(std::string jpeg) {
  std::shared_ptr<Collect> c;
  int index = 0;
  {
    std::lock_guard lock(mutex_);
    c = active_;
    if (!take_frame_locked(c, &index)) return;
  }
  if (!c->dir.empty()) save(c->dir / (std::to_string(index) + ".jpg"), jpeg, SaveMode::replace);
  classifiers_->submit([this, c, index, jpeg = std::move(jpeg)] { classify(c, index, jpeg); });
}

void LoopDhs::classify(const std::shared_ptr<Collect>& c, int index, const std::string& jpeg) {
  {
    std::lock_guard lock(mutex_);
    if (c->done) return;
  }
  const auto key = "collectLoopImages:" + c->op->handle() + ":" + std::to_string(index);
  auto pred = automl_.predict(jpeg, key);
  LoopResult r;
  if (pred) {
    r = evaluate_loop(*pred, config_.automl.threshold, config_.automl.scan_n_results);
  } else {
    log::warn("loop: frame {} not classified: {}", index, pred.error().message);
  }
  const auto text = loop_info_text(index, r);
  if (!c->dir.empty()) save(c->dir / "results.txt", text + "\n", SaveMode::append);
  std::lock_guard lock(mutex_);
  if (c->done) return;
  c->results[static_cast<std::size_t>(index)] = r;
  ++c->answered;
  c->op->update(text);
  maybe_finish_locked(c);
}

void LoopDhs::maybe_finish_locked(const std::shared_ptr<Collect>& c) {
  if (c->done) return;
  if (c->answered >= c->expected || (c->stopped && c->answered == c->next_index)) {
    c->op->complete("normal", "done");
    end_locked(c);
  } else if (!c->camera_failure.empty() && c->answered == c->next_index) {
    c->op->complete("error", "camera_unavailable " + std::to_string(c->answered));
    end_locked(c);
  }
}

void LoopDhs::end_locked(const std::shared_ptr<Collect>& c) {
  c->done = true;
  c->stream_stop = true;
  if (!c->op->aborted()) {
    last_results_ = c->results;
    last_results_.resize(static_cast<std::size_t>(c->next_index));
  }
  if (active_ == c) active_.reset();
  cv_.notify_all();
}

void LoopDhs::watchdog() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (!active_) {
      cv_.wait(lock);
      continue;
    }
    auto c = active_;
    cv_.wait_until(lock, c->deadline);
    if (active_ == c && !c->done && Clock::now() >= c->deadline) {
      log::warn("loop: collectLoopImages {} timed out with {} of {} results", c->op->handle(),
                c->answered, c->expected);
      c->op->complete("error", "timeout " + std::to_string(c->answered));
      end_locked(c);
    }
  }
}

void LoopDhs::stop_collect(const OperationPtr& op) {
  {
    std::lock_guard lock(mutex_);
    if (active_) {
      active_->stopped = true;  // the receiver stays up; frames from now on are dropped
      maybe_finish_locked(active_);
    }
  }
  op->complete("normal", "flag set");
}

// ------------------------------------------------------------ snapshots

std::optional<LoopResult> LoopDhs::snapshot_result(const OperationPtr& op) {
  auto jpeg = axis_.snapshot();
  if (!jpeg) {
    log::warn("loop: {} {}: {}", op->name(), op->handle(), jpeg.error().message);
    op->complete("error", "camera_unavailable");
    return std::nullopt;
  }
  const auto dir = debug_dir_for(op);
  if (!dir.empty()) save(dir / "snapshot.jpg", *jpeg, SaveMode::replace);
  auto pred = automl_.predict(*jpeg, op->name() + ":" + op->handle());
  if (!pred) {
    log::warn("loop: {} {}: {}", op->name(), op->handle(), pred.error().message);
    op->complete("error", "classifier_unavailable");
    return std::nullopt;
  }
  auto r = evaluate_loop(*pred, config_.automl.threshold, config_.automl.scan_n_results);
  if (!dir.empty()) save(dir / "results.txt", loop_info_text(0, r) + "\n", SaveMode::append);
  return r;
}

void LoopDhs::loop_tip(const OperationPtr& op) {
  const bool pin_flag = !op->args().empty() && op->args()[0] == "1";
  auto r = snapshot_result(op);
  if (!r) return;
  if (!r->ok) {
    op->complete("error", "TipNotInView +");
    return;
  }
  std::string text = format_loop(r->tip_x) + " " + format_loop(r->tip_y);
  if (pin_flag) text += " " + format_loop(r->pin_base_x);
  op->complete("normal", text);
}

void LoopDhs::loop_info(const OperationPtr& op) {
  auto r = snapshot_result(op);
  if (!r) return;
  if (!r->ok) {
    op->complete("failed", "no_loop " + format_loop(r->top_score));
    return;
  }
  op->complete("normal", format_loop(r->tip_x) + " " + format_loop(r->tip_y) + " " +
                             format_loop(r->pin_base_x) + " " + format_loop(r->fiber_width) + " " +
                             format_loop(r->loop_width) + " " + format_loop(r->box_min_x) + " " +
                             format_loop(r->box_max_x) + " " + format_loop(r->box_min_y) + " " +
                             format_loop(r->box_max_y) + " " + format_loop(r->loop_width_x) + " " +
                             std::to_string(r->is_micro_mount));
}

void LoopDhs::rebox(const OperationPtr& op) {
  // reboxLoopImage index start end: start and end (an x bracket) are not used
  // with AutoML boxes.
  const std::string index_text = op->args().empty() ? std::string("none") : op->args()[0];
  std::optional<LoopResult> r;
  int index = -1;
  try {
    std::size_t used = 0;
    index = std::stoi(index_text, &used);
    if (used != index_text.size()) index = -1;
  } catch (const std::exception&) {
    index = -1;
  }
  {
    std::lock_guard lock(mutex_);
    if (index >= 0 && static_cast<std::size_t>(index) < last_results_.size()) {
      r = last_results_[static_cast<std::size_t>(index)];
    }
  }
  if (!r) {
    op->complete("error", "no_such_image " + index_text);
    return;
  }
  op->complete("normal", std::to_string(index) + " " + format_loop(r->box_min_y) + " " +
                             format_loop(r->box_max_y) + " " + format_loop(r->loop_width));
}

}  // namespace acheron::dcss
