// RemoteServer: relayed streams (on the stream thread).
#include "acheron/remote/ServerImpl.hh"

namespace acheron::remote::detail {

void ServerImpl::update_relay(const std::shared_ptr<StreamEntry>& e) {
  for (Relay& r : relays) {
    if (r.entry != e) continue;
    bool on;
    {
      std::lock_guard lock(e->mutex);
      on = e->enabled && !e->removed;
    }
    const std::string filter =
        e->relay.format == RelayFormat::acheron ? topic_of(e->relay.upstream) : e->relay.upstream;
    if (on && !r.subscribed) r.socket.set(zmq::sockopt::subscribe, filter);
    if (!on && r.subscribed) r.socket.set(zmq::sockopt::unsubscribe, filter);
    r.subscribed = on;
  }
}

void ServerImpl::relay_message(Relay& r, std::vector<Buffer>& frames) {
  auto& e = r.entry;
  if (e->relay.format == RelayFormat::acheron) {
    auto m = decode_stream(frames);
    if (!m || m->stream != e->relay.upstream) return;  // exact topic match only
    {
      std::lock_guard lock(e->mutex);
      if (!e->enabled) return;
      ++e->published;
      ++e->published_since_enable;
      e->seq = m->seq;
    }
    frames[0] = Buffer::copy_of(e->topic.data(), e->topic.size());
    send_stream(e, std::move(frames));
  } else {
    Value v;
    Json refs = Json::array();
    for (const Buffer& f : frames) {
      refs.push_back(v.add(Array(DType::uint8, {static_cast<std::int64_t>(f.size())}, f)));
    }
    v.data = refs.size() == 1 ? refs[0] : refs;
    publish(e, std::move(v), std::nullopt, 0);
  }
}

}  // namespace acheron::remote::detail
