#include "acheron/wire/Envelope.hh"

#include <algorithm>
#include <cstring>
#include <limits>

#include "acheron/wire/Msgpack.hh"
#include "acheron/wire/MsgpackStream.hh"

namespace acheron::wire {
namespace {

std::string_view as_text(const Buffer& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

Buffer u64_frame(std::uint64_t v) {
  Buffer b = Buffer::allocate(8);
  for (int i = 0; i < 8; ++i) b.mutable_data()[i] = static_cast<std::byte>(v >> (8 * i));
  return b;
}

std::uint64_t read_u64(const Buffer& b) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(b.data()[i]);
  return v;
}

bool valid_command(std::uint8_t c) {
  return c >= 0x01 && c <= 0x07;
}

template <class T>
Result<T> bad(std::string why) {
  return Result<T>::failure(StatusCode::invalid_argument, std::move(why));
}

}  // namespace

bool carries_request(std::uint8_t command) {
  auto c = static_cast<Command>(command);
  return c != Command::ping && c != Command::pong;
}

std::string_view command_name(std::uint8_t command) {
  switch (static_cast<Command>(command)) {
    case Command::request:
      return "REQUEST";
    case Command::partial:
      return "PARTIAL";
    case Command::final:
      return "FINAL";
    case Command::error:
      return "ERROR";
    case Command::cancel:
      return "CANCEL";
    case Command::ping:
      return "PING";
    case Command::pong:
      return "PONG";
  }
  return "?";
}

std::vector<Buffer> encode(const Envelope& e) {
  if (!valid_command(e.command)) {
    throw Failure(StatusCode::invalid_argument,
                  "cannot encode unknown command " + std::to_string(e.command));
  }
  std::vector<Buffer> frames;
  const bool full = carries_request(e.command);
  frames.reserve(full ? 5 + e.payload.arrays.size() : 3);
  frames.push_back(Buffer::copy_of(kClientProtocol));
  std::byte cmd{e.command};
  frames.push_back(Buffer::copy_of(&cmd, 1));
  frames.push_back(Buffer::copy_of(e.service));
  if (!full) return frames;

  frames.push_back(u64_frame(e.request_id));
  std::vector<std::uint8_t> bytes;
  encode_header(e, bytes);
  frames.push_back(Buffer::from_vector(std::move(bytes)));
  for (const Array& a : e.payload.arrays) frames.push_back(a.buffer());
  return frames;
}

Result<Envelope> decode(std::span<const Buffer> frames, const DecodeLimits& limits) {
  if (frames.size() < 3) return bad<Envelope>("envelope needs at least 3 frames");
  Envelope e;
  if (as_text(frames[0]) != kClientProtocol) {
    return bad<Envelope>("unknown protocol id (expected ACHC01)");
  }
  if (frames[1].size() != 1) return bad<Envelope>("command frame must be one byte");
  e.command = static_cast<std::uint8_t>(frames[1].data()[0]);
  if (!valid_command(e.command)) return bad<Envelope>("unknown command");
  e.service = std::string(as_text(frames[2]));
  if (!carries_request(e.command)) {
    if (frames.size() != 3) return bad<Envelope>("control command carries extra frames");
    return e;
  }
  if (frames.size() < 5) return bad<Envelope>("request command needs id and header frames");
  if (frames[3].size() != 8) return bad<Envelope>("request id frame must be 8 bytes");
  e.request_id = read_u64(frames[3]);
  return decode_header(std::move(e), {frames[4].data(), frames[4].size()}, frames.subspan(5),
                       limits);
}

void write_array_descs(mp::Writer& w, const std::vector<Array>& arrays) {
  w.array(arrays.size());
  for (const Array& a : arrays) {
    w.map(a.name().empty() ? 2 : 3);
    w.str("dtype");
    w.str(to_numpy(a.dtype()));
    if (!a.name().empty()) {
      w.str("name");
      w.str(a.name());
    }
    w.str("shape");
    w.array(a.shape().size());
    for (const auto s : a.shape()) w.sint(s);
  }
}

Result<std::vector<ArrayDesc>> read_array_descs(mp::Reader& r, const DecodeLimits& limits) {
  using R = Result<std::vector<ArrayDesc>>;
  auto n = r.array();
  if (!n) return R::failure(StatusCode::invalid_argument, "header.arrays must be a list");
  if (*n > limits.max_arrays) return R::failure(StatusCode::invalid_argument, "too many arrays");
  std::vector<ArrayDesc> descs;
  descs.reserve(*n);
  for (std::size_t i = 0; i < *n; ++i) {
    const auto bad = [i](const char* what) {
      return R::failure(StatusCode::invalid_argument,
                        "header.arrays[" + std::to_string(i) + "]" + what);
    };
    auto fields = r.map();
    if (!fields) return bad(" must be a map");
    ArrayDesc d;
    bool have_dtype = false;
    for (std::size_t f = 0; f < *fields; ++f) {
      auto fk = r.str();
      if (!fk) return R::failure(StatusCode::invalid_argument, "malformed msgpack: not decodable");
      if (*fk == "dtype") {
        auto s = r.str();
        if (!s) return bad(".dtype missing");
        auto dt = dtype_from_numpy(*s);
        if (!dt) return bad(".dtype unsupported");
        d.dtype = *dt;
        have_dtype = true;
      } else if (*fk == "shape") {
        auto dims = r.array();
        if (!dims || *dims > limits.max_ndim) return bad(".shape must be a short list");
        d.shape.clear();
        for (std::size_t s = 0; s < *dims; ++s) {
          auto v = r.integer();
          if (!v || *v < 0) return bad(".shape entries must be non-negative integers");
          d.shape.push_back(*v);
        }
        d.has_shape = true;
      } else if (*fk == "name") {
        auto s = r.str();
        if (!s) return bad(".name must be a string");
        d.name = std::string(*s);
      } else {
        r.skip();
      }
    }
    if (!have_dtype) return bad(".dtype missing");
    if (d.has_shape) {
      // The array must be representable whatever the order of its
      // dimensions: itemsize times every non-zero dimension fits a signed
      // 64-bit index (NumPy's intp), also when another dimension is zero and
      // the array is empty. The Python decoder checks the same.
      constexpr auto kMaxExtent =
          static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
      std::uint64_t extent = itemsize(d.dtype);
      for (const std::int64_t s : d.shape) {
        const auto dim = static_cast<std::uint64_t>(std::max<std::int64_t>(s, 1));
        if (extent > kMaxExtent / dim)
          return bad(".shape describes an array too large to represent");
        extent *= dim;
      }
    }
    descs.push_back(std::move(d));
  }
  return descs;
}

Result<std::vector<Array>> attach_arrays(std::vector<ArrayDesc> descs,
                                         std::span<const Buffer> frames) {
  using R = Result<std::vector<Array>>;
  if (frames.size() != descs.size()) {
    return R::failure(StatusCode::invalid_argument,
                      "header lists " + std::to_string(descs.size()) + " arrays but " +
                          std::to_string(frames.size()) + " array frames follow");
  }
  std::vector<Array> arrays;
  arrays.reserve(descs.size());
  for (std::size_t i = 0; i < descs.size(); ++i) {
    ArrayDesc& d = descs[i];
    if (!d.has_shape) d.shape = {static_cast<std::int64_t>(frames[i].size() / itemsize(d.dtype))};
    try {
      arrays.emplace_back(d.dtype, std::move(d.shape), frames[i], std::move(d.name));
    } catch (const Failure& f) {
      return R::failure(StatusCode::invalid_argument,
                        "header.arrays[" + std::to_string(i) + "]: " + f.what());
    }
  }
  return arrays;
}

void encode_header(const Envelope& e, std::vector<std::uint8_t>& bytes) {
  // Written directly (no JSON tree) in the canonical form: keys in sorted
  // order, smallest encodings, as nlohmann::json::to_msgpack writes the same
  // map (the golden vectors pin this).
  const bool has_method = !e.method.empty();
  const bool has_timeout = e.timeout_ms > 0;
  const bool has_meta =
      !e.payload.meta.is_null() && !(e.payload.meta.is_object() && e.payload.meta.empty());
  const bool has_arrays = !e.payload.arrays.empty();
  bytes.reserve(bytes.size() + 64 + (has_method ? e.method.size() : 0) +
                48 * e.payload.arrays.size());
  mp::Writer w(bytes);
  w.map(std::size_t{has_arrays} + std::size_t{e.error.has_value()} + std::size_t{has_meta} +
        std::size_t{has_method} + std::size_t{has_timeout});
  if (has_arrays) {
    w.str("arrays");
    write_array_descs(w, e.payload.arrays);
  }
  if (e.error) {
    w.str("error");
    w.map(e.error->traceback.empty() ? 3 : 4);
    w.str("code");
    w.str(to_string(e.error->code));
    w.str("message");
    w.str(e.error->message);
    if (!e.error->traceback.empty()) {
      w.str("traceback");
      w.str(e.error->traceback);
    }
    w.str("type");
    w.str(e.error->type);
  }
  if (has_meta) {
    w.str("meta");
    w.json(e.payload.meta);
  }
  if (has_method) {
    w.str("method");
    w.str(e.method);
  }
  if (has_timeout) {
    w.str("timeout_ms");
    w.sint(e.timeout_ms);
  }
}

Result<Envelope> decode_header(Envelope e, std::span<const std::byte> header,
                               std::span<const Buffer> array_frames, const DecodeLimits& limits) {
  if (header.size() > limits.max_header_bytes) return bad<Envelope>("header frame too large");
  if (auto v = validate_msgpack(header); !v) return v.error();
  // Read the validated header in place; only `meta` becomes a JSON value.
  mp::Reader r(reinterpret_cast<const std::uint8_t*>(header.data()), header.size());
  auto keys = r.map();
  if (!keys) return bad<Envelope>("header must be a map");
  std::vector<ArrayDesc> descs;
  for (std::size_t k = 0; k < *keys; ++k) {
    auto key = r.str();
    if (!key) {
      // nlohmann rejects maps with non-string keys as undecodable.
      return bad<Envelope>("malformed msgpack: not decodable");
    }
    if (*key == "method") {
      auto m = r.str();
      if (!m) return bad<Envelope>("header.method must be a string");
      e.method = std::string(*m);
    } else if (*key == "timeout_ms") {
      auto t = r.integer();
      if (!t || *t < 0) return bad<Envelope>("header.timeout_ms must be a non-negative integer");
      e.timeout_ms = *t;
    } else if (*key == "meta") {
      auto j = r.json();
      if (!j) return bad<Envelope>("malformed msgpack: not decodable");
      e.payload.meta = std::move(*j);
    } else if (*key == "error") {
      auto j = r.json();
      if (!j) return bad<Envelope>("malformed msgpack: not decodable");
      if (!j->is_object()) return bad<Envelope>("header.error must be a map");
      e.error = RemoteError::from_map(*j);
    } else if (*key == "arrays") {
      auto d = read_array_descs(r, limits);
      if (!d) return d.error();
      descs = std::move(*d);
    } else {
      r.skip();
    }
  }
  auto arrays = attach_arrays(std::move(descs), array_frames);
  if (!arrays) return arrays.error();
  e.payload.arrays = std::move(*arrays);
  return e;
}

Envelope make_request(std::string service, std::uint64_t id, std::string method, Payload payload,
                      std::int64_t timeout_ms) {
  Envelope e;
  e.command = static_cast<std::uint8_t>(Command::request);
  e.service = std::move(service);
  e.request_id = id;
  e.method = std::move(method);
  e.timeout_ms = timeout_ms;
  e.payload = std::move(payload);
  return e;
}

Envelope make_reply(const Envelope& request, Command command, Payload payload) {
  Envelope e;
  e.command = static_cast<std::uint8_t>(command);
  e.service = request.service;
  e.request_id = request.request_id;
  e.method = request.method;
  e.payload = std::move(payload);
  return e;
}

Envelope make_error(const Envelope& request, RemoteError error) {
  Envelope e = make_reply(request, Command::error, {});
  e.error = std::move(error);
  return e;
}

RemoteError RemoteError::from_map(const nlohmann::json& map) {
  RemoteError err;
  auto text = [&](const char* name, std::string& out) {
    auto f = map.find(name);
    if (f != map.end() && f->is_string()) out = f->get<std::string>();
  };
  std::string code;
  text("code", code);
  err.code = status_code_from_string(code);
  text("type", err.type);
  text("message", err.message);
  text("traceback", err.traceback);
  return err;
}

}  // namespace acheron::wire
