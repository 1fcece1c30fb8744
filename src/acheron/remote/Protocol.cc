#include "acheron/remote/Protocol.hh"

#include <cstring>

#include "acheron/wire/Msgpack.hh"
#include "acheron/wire/MsgpackStream.hh"

namespace acheron::remote {
namespace {

template <class T>
Result<T> bad(std::string why) {
  return Result<T>::failure(StatusCode::invalid_argument, std::move(why));
}

std::string_view as_text(const Buffer& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace

void check_name(std::string_view kind, std::string_view name) {
  if (name.empty() || name.size() > 255 || name.find('\0') != std::string_view::npos ||
      name.front() == '$') {
    throw SetupError(std::string(kind) + " name '" + std::string(name) +
                     "' is invalid (names are 1-255 bytes, no NUL, not starting with '$') "
                     "choose another name");
  }
}

std::string topic_of(std::string_view stream) {
  std::string t(stream);
  t.push_back('\0');
  return t;
}

std::vector<Buffer> encode_stream(const StreamMessage& m) {
  std::vector<Buffer> frames;
  frames.reserve(2 + m.value.arrays.size());
  const std::string topic = topic_of(m.stream);
  frames.push_back(Buffer::copy_of(topic.data(), topic.size()));
  std::vector<std::uint8_t> bytes;
  bytes.reserve(96);
  wire::mp::Writer w(bytes);
  std::size_t keys = 5 + (m.value.arrays.empty() ? 0 : 1) + (m.error ? 1 : 0);
  w.map(keys);
  if (!m.value.arrays.empty()) {
    w.str("arrays");
    wire::write_array_descs(w, m.value.arrays);
  }
  if (m.error) {
    w.str("error");
    w.map(m.error->traceback.empty() ? 3 : 4);
    w.str("code");
    w.str(to_string(m.error->code));
    w.str("message");
    w.str(m.error->message);
    if (!m.error->traceback.empty()) {
      w.str("traceback");
      w.str(m.error->traceback);
    }
    w.str("type");
    w.str(m.error->type);
  }
  w.str("mono_ns");
  w.sint(m.mono_ns);
  w.str("seq");
  w.uint(m.seq);
  w.str("sid");
  w.uint(m.server_id);
  w.str("value");
  w.json(m.value.data);
  w.str("wall_ns");
  w.sint(m.wall_ns);
  frames.push_back(Buffer::from_vector(std::move(bytes)));
  for (const Array& a : m.value.arrays) frames.push_back(a.buffer());
  return frames;
}

Result<StreamMessage> decode_stream(std::span<const Buffer> frames,
                                    const wire::DecodeLimits& limits) {
  if (frames.size() < 2) return bad<StreamMessage>("stream message needs topic and header frames");
  auto topic = as_text(frames[0]);
  if (topic.empty() || topic.back() != '\0' || topic.find('\0') != topic.size() - 1) {
    return bad<StreamMessage>("stream topic must be a name followed by one NUL");
  }
  StreamMessage m;
  m.stream = std::string(topic.substr(0, topic.size() - 1));
  const Buffer& hdr = frames[1];
  if (hdr.size() > limits.max_header_bytes) return bad<StreamMessage>("header frame too large");
  if (auto v = wire::validate_msgpack({hdr.data(), hdr.size()}); !v) return v.error();
  wire::mp::Reader r(reinterpret_cast<const std::uint8_t*>(hdr.data()), hdr.size());
  auto n = r.map();
  if (!n) return bad<StreamMessage>("stream header must be a map");
  std::vector<wire::ArrayDesc> descs;
  for (std::size_t k = 0; k < *n; ++k) {
    auto key = r.str();
    if (!key) return bad<StreamMessage>("stream header keys must be strings");
    if (*key == "seq" || *key == "sid") {
      auto v = r.integer();
      if (!v || *v < 0)
        return bad<StreamMessage>("header." + std::string(*key) + " must be an unsigned integer");
      (*key == "seq" ? m.seq : m.server_id) = static_cast<std::uint64_t>(*v);
    } else if (*key == "wall_ns" || *key == "mono_ns") {
      auto v = r.integer();
      if (!v) return bad<StreamMessage>("header." + std::string(*key) + " must be an integer");
      (*key == "wall_ns" ? m.wall_ns : m.mono_ns) = *v;
    } else if (*key == "value") {
      auto v = r.json();
      if (!v) return bad<StreamMessage>("header.value is not decodable");
      m.value.data = std::move(*v);
    } else if (*key == "error") {
      auto e = r.json();
      if (!e || !e->is_object()) return bad<StreamMessage>("header.error must be a map");
      m.error = wire::RemoteError::from_map(*e);
    } else if (*key == "arrays") {
      auto d = wire::read_array_descs(r, limits);
      if (!d) return d.error();
      descs = std::move(*d);
    } else {
      r.skip();  // unknown keys are ignored (forward compatibility)
    }
  }
  auto arrays = wire::attach_arrays(std::move(descs), frames.subspan(2));
  if (!arrays) return arrays.error();
  m.value.arrays = std::move(*arrays);
  return m;
}

std::vector<Buffer> encode_call(const wire::Envelope& e, Framing framing) {
  if (framing == Framing::envelope) return wire::encode(e);
  std::vector<std::uint8_t> bytes;
  bytes.reserve(kCallPrefix + 48);
  bytes.insert(bytes.end(), kCallProtocol.begin(), kCallProtocol.end());
  bytes.push_back(e.command);
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<std::uint8_t>(e.request_id >> (8 * i)));
  if (e.command != static_cast<std::uint8_t>(wire::Command::ping) &&
      e.command != static_cast<std::uint8_t>(wire::Command::pong) &&
      e.command != static_cast<std::uint8_t>(wire::Command::cancel)) {
    wire::encode_header(e, bytes);
  }
  std::vector<Buffer> frames;
  frames.reserve(1 + e.payload.arrays.size());
  frames.push_back(Buffer::from_vector(std::move(bytes)));
  for (const Array& a : e.payload.arrays) frames.push_back(a.buffer());
  return frames;
}

bool is_compact(const Buffer& first) {
  return first.size() >= kCallPrefix &&
         std::memcmp(first.data(), kCallProtocol.data(), kCallProtocol.size()) == 0;
}

std::uint64_t compact_request_id(const Buffer& first) {
  std::uint64_t id = 0;
  for (int i = 7; i >= 0; --i) {
    id = (id << 8) | static_cast<std::uint8_t>(first.data()[kCallProtocol.size() + 1 + i]);
  }
  return id;
}

Result<wire::Envelope> decode_call(std::span<const Buffer> frames, Framing* framing,
                                   const wire::DecodeLimits& limits) {
  if (!frames.empty() && is_compact(frames[0])) {
    if (framing) *framing = Framing::compact;
    const Buffer& f = frames[0];
    wire::Envelope e;
    e.command = static_cast<std::uint8_t>(f.data()[kCallProtocol.size()]);
    if (e.command < 0x01 || e.command > 0x07) return bad<wire::Envelope>("unknown command");
    e.service = "remote";
    e.request_id = compact_request_id(f);
    const std::span<const std::byte> header(f.data() + kCallPrefix, f.size() - kCallPrefix);
    const bool control = e.command == static_cast<std::uint8_t>(wire::Command::ping) ||
                         e.command == static_cast<std::uint8_t>(wire::Command::pong) ||
                         e.command == static_cast<std::uint8_t>(wire::Command::cancel);
    if (control && (!header.empty() || frames.size() != 1)) {
      return bad<wire::Envelope>("control command carries a header or arrays");
    }
    if (header.empty()) {
      if (frames.size() != 1) return bad<wire::Envelope>("message without a header carries arrays");
      return e;
    }
    return wire::decode_header(std::move(e), header, frames.subspan(1), limits);
  }
  if (framing) *framing = Framing::envelope;
  return wire::decode(frames, limits);
}

Json call_meta(const Json& positional, const Json& keyword, std::uint64_t token) {
  Json meta = Json::object();
  if (!positional.is_null() && !positional.empty()) meta["args"] = positional;
  if (!keyword.is_null() && !keyword.empty()) meta["kwargs"] = keyword;
  if (token != 0) meta["token"] = token;
  return meta;
}

Args args_of(const wire::Envelope& request, std::uint64_t* token) {
  const Json& meta = request.payload.meta;
  Json positional = Json::array(), keyword = Json::object();
  if (token) *token = 0;
  if (meta.is_object()) {
    if (auto it = meta.find("args"); it != meta.end()) {
      if (!it->is_array()) throw_bad_argument("request meta.args must be a list");
      positional = *it;
    }
    if (auto it = meta.find("kwargs"); it != meta.end()) {
      if (!it->is_object()) throw_bad_argument("request meta.kwargs must be a map");
      keyword = *it;
    }
    if (auto it = meta.find("token"); it != meta.end() && token) {
      if (!it->is_number_unsigned())
        throw_bad_argument("request meta.token must be an unsigned integer");
      *token = it->get<std::uint64_t>();
    }
  } else if (!meta.is_null()) {
    throw_bad_argument("request meta must be a map");
  }
  return Args(std::move(positional), std::move(keyword), request.payload.arrays);
}

Payload reply_payload(Value value) {
  Payload p;
  p.meta = Json::object();
  p.meta["value"] = std::move(value.data);
  p.arrays = std::move(value.arrays);
  return p;
}

Value value_of(const wire::Envelope& reply) {
  Value v;
  const Json& meta = reply.payload.meta;
  if (meta.is_object()) {
    if (auto it = meta.find("value"); it != meta.end()) v.data = *it;
  }
  v.arrays = reply.payload.arrays;
  return v;
}

}  // namespace acheron::remote
