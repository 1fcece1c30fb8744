// RemoteServer: call requests (decoding, built-in calls, running a call, replies).
#include <algorithm>
#include <future>

#include "acheron/remote/ServerImpl.hh"

namespace acheron::remote::detail {

bool ServerImpl::send_reply(const std::vector<Buffer>& route, std::vector<Buffer> frames) {
  std::vector<Buffer> out;
  out.reserve(route.size() + frames.size());
  out.insert(out.end(), route.begin(), route.end());
  for (auto& f : frames) out.push_back(std::move(f));
  const bool sent = net::send_frames(*router, out, zmq::send_flags::dontwait);
  if (!route.empty()) {
    // A reply that cannot be queued: the client does not read its replies.
    // Its next requests are refused unread until a reply gets through.
    const std::string_view client(reinterpret_cast<const char*>(route[0].data()), route[0].size());
    if (!sent && backed_up.size() < kMaxBackedUp) {
      backed_up.emplace(client);
    } else if (sent && !backed_up.empty()) {
      auto it = backed_up.find(client);
      if (it != backed_up.end()) backed_up.erase(it);
    }
  }
  return sent;
}

bool ServerImpl::post_reply(std::vector<Buffer> route, std::vector<Buffer> frames, Wait wait) {
  if (reactor.in_reactor_thread()) return send_reply(route, std::move(frames));
  if (wait == Wait::queued) {
    return reactor.post([this, route = std::move(route), frames = std::move(frames)]() mutable {
      send_reply(route, std::move(frames));
    });
  }
  auto sent = std::make_shared<std::promise<bool>>();
  auto result = sent->get_future();
  if (!reactor.post([this, sent, route = std::move(route), frames = std::move(frames)]() mutable {
        sent->set_value(send_reply(route, std::move(frames)));
      })) {
    return false;
  }
  return result.get();
}

std::vector<Buffer> ServerImpl::error_frames(const wire::Envelope& request, Framing framing,
                                             StatusCode code, std::string type,
                                             std::string message) {
  return encode_call(wire::make_error(request, {code, std::move(type), std::move(message), {}}),
                     framing);
}

wire::Envelope ServerImpl::reply_envelope(const wire::Envelope& request, wire::Command command,
                                          Value value, Framing framing) {
  wire::Envelope e = wire::make_reply(request, command, reply_payload(std::move(value)));
  if (framing == Framing::compact) e.method.clear();  // the request id identifies the call
  return e;
}

void ServerImpl::note_client(const Buffer& identity) {
  const std::string_view id(reinterpret_cast<const char*>(identity.data()), identity.size());
  const auto now = Clock::now();
  std::lock_guard lock(clients_mutex);
  auto it = clients.find(id);
  if (it == clients.end()) {
    if (clients.size() >= RemoteServer::kMaxClients) {
      auto oldest = clients.begin();
      for (auto c = clients.begin(); c != clients.end(); ++c) {
        if (c->second.last_seen < oldest->second.last_seen) oldest = c;
      }
      clients.erase(oldest);
    }
    it = clients.emplace(std::string(id), ClientRecord{}).first;
  }
  ++it->second.requests;
  it->second.last_seen = now;
}

void ServerImpl::record_call(const CallEntry& call, Duration took, bool error) {
  const auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(
      0, std::chrono::duration_cast<std::chrono::nanoseconds>(took).count()));
  call.calls.fetch_add(1, std::memory_order_relaxed);
  if (error) call.errors.fetch_add(1, std::memory_order_relaxed);
  call.busy_ns.fetch_add(ns, std::memory_order_relaxed);
  const double s = static_cast<double>(ns) * 1e-9;
  const auto bucket = static_cast<std::size_t>(
      std::lower_bound(kCallDurationBoundsS.begin(), kCallDurationBoundsS.end(), s) -
      kCallDurationBoundsS.begin());
  duration_counts[bucket].fetch_add(1, std::memory_order_relaxed);
  duration_sum_ns.fetch_add(ns, std::memory_order_relaxed);
}

std::vector<Buffer> ServerImpl::run_call(const CallEntry& call, const wire::Envelope& request,
                                         Framing framing, CallContext& context) {
  const TimePoint t0 = Clock::now();
  bool error = true;
  struct Record {
    ServerImpl* self;
    const CallEntry& call;
    TimePoint t0;
    bool& error;
    ~Record() { self->record_call(call, Clock::now() - t0, error); }
  } record{this, call, t0, error};
  try {
    if (Clock::now() > context.deadline()) {
      return error_frames(request, framing, StatusCode::deadline_exceeded, "TimeoutError",
                          "the call's deadline passed before it could start");
    }
    std::uint64_t token = 0;
    Args args = args_of(request, &token);
    check_args(request.method, call.info, args);
    check_write(token, call.info.mutating);
    CurrentCall current(&context);
    Value v = call.handler(args);
    auto frames =
        encode_call(reply_envelope(request, wire::Command::final, std::move(v), framing), framing);
    error = false;
    return frames;
  } catch (const LockRefused& f) {
    return error_frames(request, framing, f.code(), kLockRefusedType, f.what());
  } catch (const Failure& f) {
    return error_frames(
        request, framing, f.code(),
        f.code() == StatusCode::invalid_argument ? "TypeError" : demangle(typeid(f).name()),
        f.what());
  } catch (const std::exception& x) {
    return error_frames(request, framing, StatusCode::unknown, demangle(typeid(x).name()),
                        x.what());
  } catch (...) {
    return error_frames(request, framing, StatusCode::unknown, "unknown",
                        "the call threw a non-standard exception");
  }
}

std::shared_ptr<CallContext> ServerImpl::make_context(const std::vector<Buffer>& route,
                                                      const wire::Envelope& request,
                                                      Framing framing, TimePoint deadline) {
  std::weak_ptr<ServerImpl> weak = weak_from_this();
  wire::Envelope head;  // what a PARTIAL needs of the request
  head.service = request.service;
  head.request_id = request.request_id;
  head.method = request.method;
  return std::make_shared<CallContext>(
      request.method, deadline, [weak, route, head, framing](Value v) {
        auto self = weak.lock();
        if (!self || self->stopping) return false;
        return self->post_reply(
            route,
            encode_call(reply_envelope(head, wire::Command::partial, std::move(v), framing),
                        framing),
            Wait::sent);
      });
}

std::string ServerImpl::running_key(const std::vector<Buffer>& route, std::uint64_t id) {
  std::string key;
  if (!route.empty()) key.assign(reinterpret_cast<const char*>(route[0].data()), route[0].size());
  for (int i = 0; i < 8; ++i) key.push_back(static_cast<char>(id >> (8 * i)));
  return key;
}

void ServerImpl::run_job(Job& job) {
  finish_job(job, run_call(*job.call, job.request, job.framing, *job.context));
}

void ServerImpl::finish_job(Job& job, std::vector<Buffer> frames) {
  {
    std::lock_guard lock(running_mutex);
    running.erase(job.key);
  }
  // Before the reply: its caller may call again at once.
  in_flight.fetch_sub(1, std::memory_order_relaxed);
  // A cancelled call gets no reply: its caller stopped waiting.
  if (!job.context->cancel_requested())
    post_reply(std::move(job.route), std::move(frames), Wait::queued);
}

Json ServerImpl::list_calls() const {
  Json out = Json::array();
  std::shared_lock lock(calls_mutex);
  for (const auto& [name, c] : calls) {
    Json params = Json::array();
    for (const Param& p : c->info.params) {
      Json jp = {{"name", p.name}, {"type", p.type}};
      if (p.default_value) jp["default"] = *p.default_value;
      params.push_back(std::move(jp));
    }
    out.push_back({{"name", name},
                   {"doc", c->info.doc},
                   {"params", params},
                   {"returns", c->info.returns},
                   {"mutating", c->info.mutating},
                   {"variadic", c->info.variadic}});
  }
  return out;
}

Value ServerImpl::builtin(const wire::Envelope& request) {
  std::uint64_t token = 0;
  Args args = args_of(request, &token);
  check_write(token, false);  // renews the caller's lease
  const std::string& m = request.method;
  auto stream_name = [&] { return args.get<std::string>(0, "name"); };
  if (m == kListCalls) return Value(list_calls());
  if (m == kListStreams) return Value(list_streams());
  if (m == kInfo) {
    return Value(Json{{"name", options.name},
                      {"version", std::string(version())},
                      {"server_id", server_id},
                      {"stream_endpoint", stream_endpoint},
                      {"protocol", 1},
                      {"write_lock", lock_status(token)}});
  }
  if (m == kEnableStream || m == kDisableStream || m == kRemoveStream) {
    // Stream management changes the server for every client: it obeys the
    // write lock as mutating calls do.
    check_write(token, true);
    if (m == kRemoveStream) return remove(stream_name()), Value(true);
    return set_enabled(stream_or_throw(stream_name()), m == kEnableStream), Value(true);
  }
  if (m == kLock || m == kUnlock) {
    if (token == 0) throw_bad_argument("the write lock needs a client token");
    std::lock_guard lock(lock_mutex);
    const auto now = Clock::now();
    if (m == kUnlock) {
      if (lock_holder == token) lock_holder = 0;
      return Value(true);
    }
    const bool force = args.get<bool>(0, "force", false);
    if (lock_held_by_other(token, now) && !force) return Value(false);
    lock_holder = token;
    lock_expiry = now + lock_lease;
    return Value(true);
  }
  throw Failure(StatusCode::not_found, "no built-in call named '" + m + "'");
}

std::optional<Job> ServerImpl::handle_request(std::vector<Buffer>& frames) {
  // [identity][empty delimiter if the client is REQ] message...
  if (frames.size() < 2) return std::nullopt;
  std::size_t start = 1;
  if (frames[1].empty()) start = 2;
  std::vector<Buffer> route(frames.begin(), frames.begin() + static_cast<std::ptrdiff_t>(start));
  n_requests.fetch_add(1, std::memory_order_relaxed);
  note_client(route[0]);
  std::span<const Buffer> msg(frames.data() + start, frames.size() - start);
  Framing framing = Framing::envelope;
  auto decoded = decode_call(msg, &framing);
  if (!decoded) {
    // Answer what we can: the request id if it is readable.
    wire::Envelope fake;
    if (framing == Framing::compact) {
      fake.request_id = compact_request_id(msg[0]);
    } else if (msg.size() >= 4 && msg[3].size() == 8) {
      std::uint64_t id = 0;
      for (int i = 7; i >= 0; --i) id = (id << 8) | static_cast<std::uint8_t>(msg[3].data()[i]);
      fake.request_id = id;
    }
    n_malformed.fetch_add(1, std::memory_order_relaxed);
    send_reply(route, error_frames(fake, framing, StatusCode::invalid_argument, "ProtocolError",
                                   decoded.error().message));
    return std::nullopt;
  }
  wire::Envelope& req = *decoded;
  switch (req.client_command()) {
    case wire::Command::ping: {
      wire::Envelope pong;
      pong.command = static_cast<std::uint8_t>(wire::Command::pong);
      pong.service = req.service;
      pong.request_id = req.request_id;
      send_reply(route, encode_call(pong, framing));
      return std::nullopt;
    }
    case wire::Command::cancel: {
      std::lock_guard lock(running_mutex);
      auto it = running.find(running_key(route, req.request_id));
      if (it != running.end()) it->second->cancel();
      return std::nullopt;  // no reply, as the protocol says
    }
    case wire::Command::request:
      if (!backed_up.empty() && !route.empty()) {
        const bool refuse =
            backed_up.count(std::string_view(reinterpret_cast<const char*>(route[0].data()),
                                             route[0].size())) > 0;
        if (refuse) {
          // Running its calls would only make replies nobody reads (a
          // client flooding calls would take its turn of the call threads).
          send_reply(route,
                     error_frames(req, framing, StatusCode::resource_exhausted, "ServerBusy",
                                  "server busy: this client does not read its replies (its queue "
                                  "is full); its calls are refused until it reads them"));
          return std::nullopt;
        }
      }
      break;
    default:
      send_reply(route, error_frames(req, framing, StatusCode::invalid_argument, "ProtocolError",
                                     "unexpected command from a client"));
      return std::nullopt;
  }
  const TimePoint deadline = req.timeout_ms > 0
                                 ? deadline_after(std::chrono::milliseconds(req.timeout_ms))
                                 : TimePoint::max();
  if (!req.method.empty() && req.method.front() == '$') {
    std::vector<Buffer> out;
    try {
      out = encode_call(reply_envelope(req, wire::Command::final, builtin(req), framing), framing);
    } catch (const LockRefused& f) {
      out = error_frames(req, framing, f.code(), kLockRefusedType, f.what());
    } catch (const Failure& f) {
      out = error_frames(req, framing, f.code(),
                         f.code() == StatusCode::invalid_argument ? "TypeError" : "Failure",
                         f.what());
    } catch (const std::exception& x) {
      out = error_frames(req, framing, StatusCode::internal, demangle(typeid(x).name()), x.what());
    }
    send_reply(route, std::move(out));
    return std::nullopt;
  }
  std::shared_ptr<CallEntry> call;
  {
    std::shared_lock lock(calls_mutex);
    auto it = calls.find(req.method);
    if (it != calls.end()) call = it->second;
  }
  if (!call) {
    n_not_found.fetch_add(1, std::memory_order_relaxed);
    send_reply(route, error_frames(req, framing, StatusCode::not_found, "NotFound",
                                   "no call named '" + req.method + "'"));
    return std::nullopt;
  }
  if (call->info.threading == Threading::io_thread) {
    // Runs here, before the next request is read: nothing can cancel it,
    // and its progress replies go out through this thread's socket use.
    struct Origin {
      ServerImpl* self;
      const std::vector<Buffer>* route;
      const wire::Envelope* request;
      Framing framing;
    } origin{this, &route, &req, framing};
    CallContext context(req.method, deadline, [o = &origin](Value v) {
      return o->self->send_reply(
          *o->route,
          encode_call(reply_envelope(*o->request, wire::Command::partial, std::move(v), o->framing),
                      o->framing));
    });
    send_reply(route, run_call(*call, req, framing, context));
    return std::nullopt;
  }
  // Bounded backlog: at most `threads` calls run and max_queued wait. When
  // it is full, the client with the most waiting calls gives way: its newest
  // waiting call is refused for this one, or this one is refused.
  const std::size_t threads = std::max<std::size_t>(1, options.threads);
  std::string client;
  if (!route.empty())
    client.assign(reinterpret_cast<const char*>(route[0].data()), route[0].size());
  auto busy = [&](const wire::Envelope& r, Framing f) {
    return error_frames(r, f, StatusCode::resource_exhausted, "ServerBusy",
                        "server busy: " + std::to_string(threads) + " calls are running and " +
                            std::to_string(options.max_queued) +
                            " waiting (max_queued), the most of them this client's; retry later");
  };
  std::optional<Job> evicted;
  if (in_flight.fetch_add(1, std::memory_order_relaxed) >= threads + options.max_queued) {
    {
      std::lock_guard lk(backlog_mutex);
      evicted = backlog.make_way_for(client);
    }
    if (!evicted) {
      in_flight.fetch_sub(1, std::memory_order_relaxed);
      n_busy.fetch_add(1, std::memory_order_relaxed);
      send_reply(route, busy(req, framing));
      return std::nullopt;
    }
    // The evicted call's place goes to this one (in_flight stays counted);
    // it is refused once this one is queued (lead()).
    std::lock_guard lock(running_mutex);
    running.erase(evicted->key);
  }
  try {
    auto context = make_context(route, req, framing, deadline);
    Job job{std::move(call),
            std::move(route),
            std::move(req),
            framing,
            deadline,
            std::move(context),
            {},
            std::move(client),
            {},
            {}};
    job.key = running_key(job.route, job.request.request_id);
    if (evicted) {
      n_busy.fetch_add(1, std::memory_order_relaxed);  // the evicted call is refused busy
      job.evicted_route = std::move(evicted->route);
      job.evicted_reply = busy(evicted->request, evicted->framing);
    }
    {
      std::lock_guard lock(running_mutex);
      running[job.key] = job.context;
    }
    return job;
  } catch (...) {  // out of memory: the call is not accepted after all
    in_flight.fetch_sub(1, std::memory_order_relaxed);
    throw;
  }
}

}  // namespace acheron::remote::detail
