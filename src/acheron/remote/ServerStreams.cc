// RemoteServer: streams (periodic schedule, publication, held messages) and the stream thread.
#include "acheron/remote/ServerImpl.hh"

namespace acheron::remote::detail {

std::shared_ptr<StreamEntry> ServerImpl::find_stream(std::string_view name) const {
  std::lock_guard lock(streams_mutex);
  auto it = streams.find(name);
  return it == streams.end() ? nullptr : it->second;
}

std::shared_ptr<StreamEntry> ServerImpl::stream_or_throw(std::string_view name) const {
  auto e = find_stream(name);
  if (!e) throw Failure(StatusCode::not_found, "no stream named '" + std::string(name) + "'");
  return e;
}

void ServerImpl::post(Outgoing out) {
  {
    std::lock_guard lock(out_mutex);
    outbox.push_back(std::move(out));
  }
  waker.wake();
}

void ServerImpl::command(std::function<void()> f) {
  {
    std::lock_guard lock(out_mutex);
    commands.push_back(std::move(f));
  }
  waker.wake();
}

bool ServerImpl::publish(const std::shared_ptr<StreamEntry>& e, Value value,
                         std::optional<wire::RemoteError> error, std::int64_t wall_ns) {
  StreamMessage m;
  {
    std::lock_guard lock(e->mutex);
    if (!e->enabled || e->removed) return false;
    m.seq = ++e->seq;
    ++e->published;
    ++e->published_since_enable;
    if (error) ++e->errors;
  }
  m.stream = e->name;
  m.server_id = server_id;
  m.wall_ns = wall_ns != 0 ? wall_ns : wall_time_ns();
  m.mono_ns = mono_time_ns();
  m.value = std::move(value);
  m.error = std::move(error);
  post({encode_stream(m), e});
  return true;
}

void ServerImpl::run_periodic(std::shared_ptr<StreamEntry> e) {
  const auto period =
      std::chrono::duration_cast<Duration>(std::chrono::duration<double>(1.0 / e->rate_hz));
  PeriodicSchedule schedule(period, Clock::now());
  bool was_enabled = false;
  std::unique_lock lock(e->mutex);
  for (;;) {
    e->cv.wait(lock, [&] { return stopping.load() || e->removed || e->enabled; });
    if (stopping || e->removed) return;
    if (!was_enabled) {
      schedule.restart(Clock::now());
      was_enabled = true;
    }
    // Sleep until the deadline; a disable, removal or stop wakes us early.
    const TimePoint due = schedule.next();
    if (e->cv.wait_until(lock, due, [&] { return stopping.load() || e->removed || !e->enabled; })) {
      if (stopping || e->removed) return;
      was_enabled = false;  // disabled: the schedule restarts when enabled again
      continue;
    }
    const bool idle = e->options.only_with_subscribers && !e->subscribed.load();
    lock.unlock();
    if (!idle) {
      Value v;
      std::optional<wire::RemoteError> err;
      try {
        v = e->producer();
      } catch (const Failure& f) {
        err = wire::RemoteError{f.code(), demangle(typeid(f).name()), f.what(), {}};
      } catch (const std::exception& x) {
        err = wire::RemoteError{StatusCode::unknown, demangle(typeid(x).name()), x.what(), {}};
      }
      publish(e, std::move(v), std::move(err), 0);
    }
    lock.lock();
    const auto skipped_before = schedule.overruns();
    schedule.advance(Clock::now());
    e->overruns += schedule.overruns() - skipped_before;
  }
}

void ServerImpl::set_enabled(const std::shared_ptr<StreamEntry>& e, bool on) {
  {
    std::lock_guard lock(e->mutex);
    if (e->removed) throw Failure(StatusCode::not_found, "stream '" + e->name + "' was removed");
    if (e->enabled == on) return;  // idempotent
    e->enabled = on;
    if (on) {
      e->enabled_at = Clock::now();
      e->published_since_enable = 0;
    }
  }
  e->cv.notify_all();
  if (e->kind == StreamKind::relay) {
    auto self = shared_from_this();
    command([self, e] { self->update_relay(e); });
  }
}

void ServerImpl::remove(const std::string& name) {
  std::shared_ptr<StreamEntry> e;
  {
    std::lock_guard lock(streams_mutex);
    auto it = streams.find(name);
    if (it == streams.end()) throw Failure(StatusCode::not_found, "no stream named '" + name + "'");
    e = it->second;
    streams.erase(it);
  }
  {
    std::lock_guard lock(e->mutex);
    e->removed = true;
    e->enabled = false;
  }
  e->cv.notify_all();
  if (e->kind == StreamKind::relay) {
    auto self = shared_from_this();
    command(
        [self, e] { std::erase_if(self->relays, [&](const Relay& r) { return r.entry == e; }); });
  }
}

StreamStatus ServerImpl::status(const StreamEntry& e) const {
  StreamStatus s;
  std::lock_guard lock(e.mutex);
  s.name = e.name;
  s.kind = e.kind;
  s.enabled = e.enabled;
  s.rate_hz = e.rate_hz;
  s.published = e.published;
  s.overruns = e.overruns;
  s.errors = e.errors;
  s.subscribed = e.subscribed.load();
  s.dropped = e.dropped;
  s.held = e.held.load();
  s.doc = e.options.doc;
  s.source = e.source;
  if (e.enabled) {
    const double secs = std::chrono::duration<double>(Clock::now() - e.enabled_at).count();
    s.achieved_hz = secs > 0 ? static_cast<double>(e.published_since_enable) / secs : 0;
  }
  return s;
}

std::shared_ptr<StreamEntry> ServerImpl::insert(std::shared_ptr<StreamEntry> e) {
  check_name("stream", e->name);
  e->topic = topic_of(e->name);
  e->enabled = e->options.enabled;
  e->enabled_at = Clock::now();
  std::lock_guard lock(streams_mutex);
  if (!streams.emplace(e->name, e).second) {
    throw SetupError("a stream named '" + e->name + "' exists (names are unique) remove it first");
  }
  return e;
}

void ServerImpl::send_stream(const std::shared_ptr<StreamEntry>& e, std::vector<Buffer> frames) {
  if (held.empty() && net::send_frames(xpub, frames, zmq::send_flags::dontwait)) {
    if (e) e->last = std::move(frames);
    return;
  }
  if (!e) return;  // a heartbeat or snapshot is not worth holding: the next one follows
  ++e->held;
  held.emplace_back(e, std::move(frames));
  while (held.size() > static_cast<std::size_t>(std::max(1, options.send_hwm))) {
    auto& [old, f] = held.front();
    --old->held;
    std::uint64_t dropped;
    {
      std::lock_guard lock(old->mutex);
      dropped = ++old->dropped;
    }
    const auto now = Clock::now();
    if (now >= next_drop_warning) {
      log::warn(
          "remote server: stream '{}' dropped a message ({} so far): a subscriber's queue "
          "is full (send_hwm {})",
          old->name, dropped, options.send_hwm);
      next_drop_warning = now + std::chrono::seconds(5);
    }
    held.pop_front();
  }
}

void ServerImpl::flush_held() {
  while (!held.empty()) {
    auto& [e, frames] = held.front();
    if (!net::send_frames(xpub, frames, zmq::send_flags::dontwait)) return;
    --e->held;
    e->last = std::move(frames);
    held.pop_front();
  }
}

Json ServerImpl::list_streams() const {
  std::vector<std::shared_ptr<StreamEntry>> all;
  {
    std::lock_guard lock(streams_mutex);
    for (const auto& [n, e] : streams) all.push_back(e);
  }
  Json out = Json::array();
  for (const auto& e : all) out.push_back(to_json(status(*e)));
  return out;
}

void ServerImpl::handle_subscription(const Buffer& msg) {
  if (msg.empty()) return;
  const bool on = static_cast<std::uint8_t>(msg.data()[0]) == 1;
  std::string_view topic(reinterpret_cast<const char*>(msg.data()) + 1, msg.size() - 1);
  if (topic.empty() || topic.back() != '\0') return;
  auto e = find_stream(topic.substr(0, topic.size() - 1));
  if (!e) return;
  e->subscribed = on;
  if (on && !e->last.empty()) {
    // Snapshot for the new subscriber; others drop it by sequence number.
    net::send_frames(xpub, e->last, zmq::send_flags::dontwait);
  }
}

void ServerImpl::heartbeat() {
  StreamMessage m;
  m.stream = std::string(kHeartbeatStream);
  m.server_id = server_id;
  m.seq = ++heartbeat_seq;
  m.wall_ns = wall_time_ns();
  m.mono_ns = mono_time_ns();
  net::send_frames(xpub, encode_stream(m), zmq::send_flags::dontwait);
}

void ServerImpl::drain() {
  std::deque<Outgoing> out;
  std::deque<std::function<void()>> cmds;
  {
    std::lock_guard lock(out_mutex);
    out.swap(outbox);
    cmds.swap(commands);
  }
  for (auto& c : cmds) c();
  for (auto& o : out) send_stream(o.entry, std::move(o.frames));
}

void ServerImpl::run_streams() {
  std::vector<Buffer> frames;
  TimePoint next_hb = Clock::now();
  std::vector<zmq::pollitem_t> items;
  while (!stopping) {
    items.clear();
    items.push_back({xpub.handle(), 0, ZMQ_POLLIN, 0});
    items.push_back({nullptr, waker.fd(), ZMQ_POLLIN, 0});
    for (Relay& r : relays) items.push_back({r.socket.handle(), 0, ZMQ_POLLIN, 0});
    const auto now = Clock::now();
    if (now >= next_hb) {
      heartbeat();
      next_hb = now + options.heartbeat;
    }
    flush_held();
    // XPUB never reports POLLOUT changes: held messages are retried every millisecond.
    const auto wait = held.empty()
                          ? std::chrono::duration_cast<std::chrono::milliseconds>(next_hb - now) +
                                std::chrono::milliseconds(1)
                          : std::chrono::milliseconds(1);
    try {
      zmq::poll(items.data(), items.size(), wait);
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      if (e.num() == EINTR) continue;
      throw;
    }
    if (items[1].revents & ZMQ_POLLIN) {
      waker.drain();
      drain();
    }
    // Bounded batches so one busy socket cannot starve the others.
    for (int i = 0; i < 64 && (items[0].revents & ZMQ_POLLIN); ++i) {
      if (!net::recv_frames(xpub, frames, zmq::recv_flags::dontwait)) break;
      if (!frames.empty()) handle_subscription(frames[0]);
    }
    const std::size_t n_relays = std::min(relays.size(), items.size() - 2);
    for (std::size_t k = 0; k < n_relays; ++k) {
      if (!(items[2 + k].revents & ZMQ_POLLIN)) continue;
      for (int i = 0; i < 64; ++i) {
        if (k >= relays.size()) break;
        if (!net::recv_frames(relays[k].socket, frames, zmq::recv_flags::dontwait)) break;
        relay_message(relays[k], frames);
      }
    }
  }
}

}  // namespace acheron::remote::detail
