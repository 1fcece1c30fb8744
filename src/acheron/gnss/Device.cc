#include "acheron/gnss/Device.hh"

#include <algorithm>
#include <set>

#include "acheron/core/Error.hh"

namespace acheron::gnss {
namespace ubx = wire::ubx;

UbxDevice::UbxDevice(SerialPort port, std::size_t max_payload)
    : port_(std::move(port)), parser_(max_payload) {}

void UbxDevice::send(const ubx::Bytes& frame) {
  if (!port_.write(frame)) {
    throw Failure(StatusCode::unavailable,
                  "F9T device " + port_.path() + " stopped accepting data (" + port_.error() + ")");
  }
}

void UbxDevice::to_sink(ReceivedFrame&& f) {
  if (sink_) sink_(std::move(f));
}

std::optional<ReceivedFrame> UbxDevice::read(TimePoint deadline) {
  std::uint8_t buf[4096];
  for (;;) {
    if (!ready_.empty()) {
      ReceivedFrame f = std::move(ready_.front());
      ready_.pop_front();
      return f;
    }
    const auto now = Clock::now();
    if (now >= deadline) return std::nullopt;
    std::size_t n = 0;
    switch (
        port_.read(buf, std::min<Duration>(deadline - now, std::chrono::milliseconds(100)), &n)) {
      case ReadStatus::timeout:
        continue;
      case ReadStatus::closed:
        throw Failure(StatusCode::unavailable,
                      "F9T device " + port_.path() + " was lost (" + port_.error() + ")");
      case ReadStatus::data:
        break;
    }
    const std::int64_t t = wall_time_ns();
    parser_.feed(ubx::ByteSpan(buf, n));
    while (auto f = parser_.next()) ready_.push_back({std::move(*f), t});
  }
}

std::optional<ReceivedFrame> UbxDevice::wait_for(const std::function<bool(const ubx::Frame&)>& pred,
                                                 TimePoint deadline) {
  while (auto f = read(deadline)) {
    if (pred(f->frame)) return f;
    to_sink(std::move(*f));
  }
  return std::nullopt;
}

std::optional<ubx::Frame> UbxDevice::poll(ubx::MessageId msg, Duration timeout) {
  send(ubx::encode_poll(msg));
  auto f = wait_for(
      [&](const ubx::Frame& fr) { return fr.message_id() == msg && !fr.payload().empty(); },
      deadline_after(timeout));
  if (!f) return std::nullopt;
  return std::move(f->frame);
}

AckResult UbxDevice::command(const ubx::Bytes& frame, Duration timeout) {
  send(frame);
  const std::uint8_t cls = frame[2], id = frame[3];
  auto f = wait_for(
      [&](const ubx::Frame& fr) {
        auto a = ubx::decode_ack(fr.message_id(), fr.payload());
        return a && a->cls_id == cls && a->msg_id == id;
      },
      deadline_after(timeout));
  if (!f) return AckResult::timeout;
  return f->frame.message_id() == ubx::kAckAck ? AckResult::ack : AckResult::nak;
}

std::map<std::uint32_t, ubx::Bytes> UbxDevice::valget(const std::vector<std::uint32_t>& keys,
                                                      std::uint8_t layer, Duration timeout,
                                                      Duration quiet) {
  std::map<std::uint32_t, ubx::Bytes> got;
  std::set<std::uint32_t> wanted(keys.begin(), keys.end());
  send(ubx::encode_cfg_valget_poll({0, layer, 0, keys}));
  const TimePoint end = deadline_after(timeout);
  bool answered = false;  // ACK or NAK of this poll seen
  TimePoint quiet_end = TimePoint::max();
  while (true) {
    const TimePoint until = std::min(end, quiet_end);
    auto f = read(until);
    if (!f) break;
    const auto id = f->frame.message_id();
    if (id == ubx::kCfgValget) {
      auto r = ubx::decode_cfg_valget_reply(f->frame.payload());
      if (r && r->version == 1 && r->layer == layer) {
        for (auto& item : r->items) {
          if (wanted.count(item.key)) got[item.key] = std::move(item.value);
        }
        if (got.size() == wanted.size()) break;
        if (answered) quiet_end = deadline_after(quiet);
        continue;
      }
    } else if (auto a = ubx::decode_ack(id, f->frame.payload());
               a && a->cls_id == ubx::kCfgValget.cls && a->msg_id == ubx::kCfgValget.id) {
      answered = true;
      if (got.size() == wanted.size() || !a->acknowledged) break;
      quiet_end = deadline_after(quiet);
      continue;
    }
    to_sink(std::move(*f));
  }
  return got;
}

}  // namespace acheron::gnss
