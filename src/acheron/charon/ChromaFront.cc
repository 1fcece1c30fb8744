#include "acheron/charon/ChromaFront.hh"

#include <cstring>

#include <fmt/format.h>

#include "acheron/core/Error.hh"
#include "acheron/wire/ChromaCharon.hh"

namespace acheron::charon {
namespace chroma = wire::chroma;

namespace {

// A route frame for the router: this prefix, then the envelope kind, the
// reply header and the client's identity. libzmq never gives a peer an
// identity of this length that starts with a zero byte (its own are 5
// bytes, and identities a peer sets cannot start with zero), so no frontend
// client's route can look like one.
constexpr std::string_view kRouteMagic{"\0chroma\1", 8};
constexpr std::size_t kRouteFixed = kRouteMagic.size() + 1 + 1 + 2 + 4 + 4;

Buffer make_route(const Route& client, const chroma::Header& h) {
  const Buffer& identity = client.front();
  Buffer b = Buffer::allocate(kRouteFixed + identity.size());
  std::byte* p = b.mutable_data();
  std::memcpy(p, kRouteMagic.data(), kRouteMagic.size());
  p += kRouteMagic.size();
  *p++ = static_cast<std::byte>(client.size() == 2 ? 1 : 0);  // REQ delimiter
  *p++ = static_cast<std::byte>(h.framing);
  std::memcpy(p, &h.collection_version, 2);
  std::memcpy(p + 2, &h.unique_id, 4);
  std::memcpy(p + 6, &h.bits, 4);
  p += 10;
  std::memcpy(p, identity.data(), identity.size());
  return b;
}

struct ParsedRoute {
  Route client;
  chroma::Header header;
};

std::optional<ParsedRoute> parse_route(const Buffer& b) {
  if (b.size() <= kRouteFixed ||
      std::memcmp(b.data(), kRouteMagic.data(), kRouteMagic.size()) != 0) {
    return std::nullopt;
  }
  const std::byte* p = b.data() + kRouteMagic.size();
  ParsedRoute r;
  const bool delimiter = std::to_integer<int>(p[0]) == 1;
  r.header.framing = std::to_integer<int>(p[1]) == static_cast<int>(chroma::Framing::message)
                         ? chroma::Framing::message
                         : chroma::Framing::buffer;
  std::memcpy(&r.header.collection_version, p + 2, 2);
  std::memcpy(&r.header.unique_id, p + 4, 4);
  std::memcpy(&r.header.bits, p + 8, 4);
  r.client.push_back(b.slice(kRouteFixed, b.size() - kRouteFixed));
  if (delimiter) r.client.push_back(Buffer{});
  return r;
}

}  // namespace

void ChromaOptions::validate() const {
  if (limits.max_photons == 0) {
    throw SetupError(
        "the chroma photon limit is 0 (every list would be refused) give a positive "
        "--chroma-max-photons");
  }
  const auto needed = chroma::encoded_size(limits.max_photons, chroma::Framing::message);
  if (max_message_bytes < 0 || static_cast<std::uint64_t>(max_message_bytes) < needed) {
    throw SetupError(fmt::format(
        "the chroma message limit of {} bytes cannot hold a list of {} photons ({} bytes), so "
        "such lists would be cut off without a reply; raise --chroma-max-bytes or lower "
        "--chroma-max-photons",
        max_message_bytes, limits.max_photons, needed));
  }
}

std::optional<ChromaMessage> split_chroma_message(std::vector<Buffer> frames) {
  const auto routed = wire::charon::split_envelope(frames);
  if (routed.envelope_frames == 0) return std::nullopt;
  ChromaMessage m;
  m.route.assign(frames.begin(),
                 frames.begin() + static_cast<std::ptrdiff_t>(routed.envelope_frames));
  m.body.assign(routed.body.begin(), routed.body.end());
  return m;
}

namespace {

// Decodes (or checks) a request body with `read`; a failure becomes the
// refusal, in the framing the first frame appears to use.
template <class T, class Read>
std::variant<T, ChromaRefusal> read_chroma_request(std::span<const Buffer> body, Read&& read) {
  const std::span<const std::byte> first =
      body.empty() ? std::span<const std::byte>{}
                   : std::span<const std::byte>(body[0].data(), body[0].size());
  auto refuse = [&](ErrorInfo e) {
    Buffer reply = chroma::encode_error(e.code, e.message, chroma::detect_framing(first));
    return ChromaRefusal{std::move(reply), std::move(e)};
  };
  if (body.size() != 1) {
    return refuse({StatusCode::invalid_argument,
                   fmt::format("the request has {} frames (a ChromaPhotonList is sent as one)",
                               body.size())});
  }
  auto result = read(first);
  if (!result) return refuse(result.error());
  return std::move(*result);
}

}  // namespace

std::variant<chroma::Decoded, ChromaRefusal> decode_chroma_request(std::span<const Buffer> body,
                                                                   const chroma::Limits& limits) {
  return read_chroma_request<chroma::Decoded>(
      body, [&](std::span<const std::byte> b) { return chroma::decode(b, limits); });
}

std::variant<chroma::View, ChromaRefusal> check_chroma_request(std::span<const Buffer> body,
                                                               const chroma::Limits& limits) {
  return read_chroma_request<chroma::View>(
      body, [&](std::span<const std::byte> b) { return chroma::decode_view(b, limits); });
}

std::vector<Buffer> chroma_reply(const Route& route, Buffer reply) {
  std::vector<Buffer> frames = route;
  frames.push_back(std::move(reply));
  return frames;
}

ChromaFront::ChromaFront(ChromaOptions options) : options_(std::move(options)) {
  options_.validate();
}

ChromaFront::Action ChromaFront::on_message(std::vector<Buffer> frames) {
  Action a;
  auto message = split_chroma_message(std::move(frames));
  if (!message) {
    ++stats_.dropped;
    return a;
  }
  ++stats_.requests;
  auto decoded = decode_chroma_request(message->body, options_.limits);
  if (auto* refusal = std::get_if<ChromaRefusal>(&decoded)) {
    ++stats_.refused;
    a.refused = fmt::format("{}: {}", to_string(refusal->error.code), refusal->error.message);
    a.reply = chroma_reply(message->route, std::move(refusal->reply));
    return a;
  }
  auto& request = std::get<chroma::Decoded>(decoded);
  Job job;
  job.event_id = chroma_event_id(request.header);
  job.photons = request.photons.size();
  job.route = {make_route(message->route, request.header)};
  job.body = chroma::to_photon_data_frames(std::move(request.photons), job.event_id);
  a.job = std::move(job);
  return a;
}

bool ChromaFront::is_chroma_route(const std::vector<Buffer>& frames) {
  return !frames.empty() && frames[0].size() > kRouteFixed &&
         std::memcmp(frames[0].data(), kRouteMagic.data(), kRouteMagic.size()) == 0;
}

std::vector<Buffer> ChromaFront::on_router_reply(
    std::span<const Buffer> frames, const std::optional<wire::charon::DetectorInfo>& detector) {
  if (frames.empty()) return {};
  auto route = parse_route(frames[0]);
  if (!route) return {};
  const auto body = frames.subspan(1);
  const auto header = wire::charon::header_of(body);
  auto error = [&](StatusCode code, std::string message) {
    ++stats_.failed;
    return chroma_reply(route->client, chroma::encode_error(code, message, route->header.framing));
  };
  if (header == wire::charon::kSimComplete) {
    auto hits = wire::charon::decode_sim_complete(body);
    if (!hits) return error(StatusCode::internal, "a worker's reply: " + hits.error().message);
    if (!detector) return error(StatusCode::internal, "the detector is not known yet");
    auto list = chroma::from_hits(*hits, *detector);
    if (!list) return error(StatusCode::internal, "a worker's reply: " + list.error().message);
    auto bytes = chroma::encode(*list, route->header);
    if (!bytes) return error(StatusCode::internal, "a worker's reply: " + bytes.error().message);
    ++stats_.replies;
    return chroma_reply(route->client, std::move(*bytes));
  }
  if (header == wire::charon::kNoWorkers) {
    return error(StatusCode::unavailable,
                 "no worker can take the list now (the queue is full or no worker is "
                 "connected); send it again later");
  }
  if (header == wire::charon::kSimFailed) {
    return error(StatusCode::aborted,
                 "the workers could not simulate the list (a worker failed or died with it)");
  }
  return error(StatusCode::internal,
               fmt::format("unexpected reply '{}' from the queue", escaped(header, 64)));
}

}  // namespace acheron::charon
