#include "acheron/chroma/Client.hh"

#include <thread>
#include <vector>

namespace acheron::chroma {
namespace wc = wire::chroma;

namespace {

// A message viewing the request's bytes; ZeroMQ releases its reference.
zmq::message_t share(const Buffer& b) {
  auto* keep = new Buffer(b);
  return zmq::message_t(
      const_cast<std::byte*>(keep->data()), keep->size(),
      [](void*, void* hint) { delete static_cast<Buffer*>(hint); }, keep);
}

// One request with deadlines and fresh-socket retries; the reply's bytes.
// An error reply saying "unavailable" is retried after a pause.
template <class Message>
zmq::message_t exchange(zmq::context_t& context, const ClientOptions& o, Message&& make) {
  for (int attempt = 1; attempt <= o.attempts; ++attempt) {
    // A fresh socket per attempt: a REQ socket cannot send again after an
    // unanswered request (zguide's Lazy Pirate).
    zmq::socket_t s(context, zmq::socket_type::req);
    s.set(zmq::sockopt::linger, 0);
    s.connect(o.endpoint);
    s.send(make(), zmq::send_flags::none);
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, o.timeout);
    if (!(item.revents & ZMQ_POLLIN)) continue;
    zmq::message_t reply;
    (void)s.recv(reply, zmq::recv_flags::none);
    while (reply.more()) {  // one frame expected; extra frames are dropped
      zmq::message_t extra;
      (void)s.recv(extra, zmq::recv_flags::none);
    }
    const std::span<const std::byte> bytes(static_cast<const std::byte*>(reply.data()),
                                           reply.size());
    if (attempt < o.attempts) {
      auto error = wc::decode_error(bytes);
      if (error && error->code == StatusCode::unavailable) {
        std::this_thread::sleep_for(o.unavailable_wait);
        continue;
      }
    }
    return reply;
  }
  throw Failure(StatusCode::unavailable, "no reply from the chroma server at " + o.endpoint +
                                             " after " + std::to_string(o.attempts) +
                                             " attempts of " + std::to_string(o.timeout.count()) +
                                             " ms");
}

}  // namespace

Client::Client(ClientOptions options) : options_(std::move(options)) {
  ACHERON_EXPECT(options_.attempts >= 1 && options_.timeout.count() > 0,
                 "chroma client needs attempts >= 1 and a positive timeout (no request could "
                 "succeed otherwise) fix the options");
}

Client::~Client() = default;

PhotonList Client::simulate(const PhotonList& photons, std::uint32_t event_id) {
  wc::Header header;
  header.framing = options_.framing;
  header.unique_id = event_id;
  auto encoded = wc::encode(photons, header);
  if (!encoded) {
    throw Failure(encoded.error().code, "cannot send the list: " + encoded.error().message);
  }
  const Buffer request = std::move(*encoded);
  const zmq::message_t reply = exchange(context_, options_, [&] { return share(request); });
  const std::span<const std::byte> bytes(static_cast<const std::byte*>(reply.data()), reply.size());
  auto decoded = wc::decode(bytes, options_.limits);
  if (decoded) return PhotonList(std::move(decoded->photons));
  if (auto error = wc::decode_error(bytes)) {
    throw Failure(error->code, "the chroma server at " + options_.endpoint +
                                   " refused the list: " + error->message);
  }
  throw Failure(StatusCode::invalid_argument, "unreadable reply from the chroma server at " +
                                                  options_.endpoint + ": " +
                                                  decoded.error().message);
}

std::vector<std::byte> Client::request(const std::vector<std::byte>& message) {
  const zmq::message_t reply =
      exchange(context_, options_, [&] { return zmq::message_t(message.data(), message.size()); });
  const auto* p = static_cast<const std::byte*>(reply.data());
  return std::vector<std::byte>(p, p + reply.size());
}

}  // namespace acheron::chroma
