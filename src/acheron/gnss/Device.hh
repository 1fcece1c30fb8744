// Request/response over a UBX serial link: polls, CFG-VALSET with ACK/NAK,
// CFG-VALGET. Frames that are not the awaited reply go to a sink (the
// message cache), so nothing the receiver sends is lost while waiting.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "acheron/core/Clock.hh"
#include "acheron/gnss/Serial.hh"
#include "acheron/wire/Ubx.hh"

namespace acheron::gnss {

struct ReceivedFrame {
  wire::ubx::Frame frame;
  std::int64_t wall_ns = 0;  // when it was read
};

enum class AckResult { ack, nak, timeout };

class UbxDevice final {
 public:
  using Sink = std::function<void(ReceivedFrame&&)>;

  explicit UbxDevice(SerialPort port, std::size_t max_payload = wire::ubx::kDefaultMaxPayload);

  void set_sink(Sink sink) { sink_ = std::move(sink); }
  const std::string& path() const noexcept { return port_.path(); }

  // Writes a frame. Throws Failure(unavailable) if the device is gone.
  void send(const wire::ubx::Bytes& frame);
  // The next frame read before deadline, or nullopt. Throws
  // Failure(unavailable) if the device is gone.
  std::optional<ReceivedFrame> read(TimePoint deadline);
  // Waits for a frame matching pred; others go to the sink.
  std::optional<ReceivedFrame> wait_for(const std::function<bool(const wire::ubx::Frame&)>& pred,
                                        TimePoint deadline);
  // Sends a poll request and waits for the answer (same class/id, non-empty).
  std::optional<wire::ubx::Frame> poll(wire::ubx::MessageId msg, Duration timeout);
  // Sends a command and waits for its ACK-ACK or ACK-NAK.
  AckResult command(const wire::ubx::Bytes& frame, Duration timeout);
  // CFG-VALGET of ≤64 keys on a layer: the values received (keys the
  // receiver left out are absent). Gathers replies until every key is seen,
  // the request is acknowledged or NAKed and then `quiet` passes without
  // another reply, or `timeout` ends.
  std::map<std::uint32_t, wire::ubx::Bytes> valget(const std::vector<std::uint32_t>& keys,
                                                   std::uint8_t layer, Duration timeout,
                                                   Duration quiet);
  SerialPort& port() noexcept { return port_; }

 private:
  void to_sink(ReceivedFrame&& f);

  SerialPort port_;
  wire::ubx::StreamParser parser_;
  std::deque<ReceivedFrame> ready_;
  Sink sink_;
};

}  // namespace acheron::gnss
