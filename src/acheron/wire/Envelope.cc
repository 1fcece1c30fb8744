#include "acheron/wire/Envelope.hh"

#include <cstring>

#include "acheron/wire/Msgpack.hh"

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

bool valid_command(Role role, std::uint8_t c) {
  return role == Role::client ? (c >= 0x01 && c <= 0x07) : (c >= 0x01 && c <= 0x08);
}

template <class T>
Result<T> bad(std::string why) {
  return Result<T>::failure(StatusCode::invalid_argument, std::move(why));
}

}  // namespace

bool carries_request(Role role, std::uint8_t command) {
  if (role == Role::client) {
    auto c = static_cast<Command>(command);
    return c != Command::ping && c != Command::pong;
  }
  auto c = static_cast<WorkerCommand>(command);
  return c != WorkerCommand::ready && c != WorkerCommand::heartbeat &&
         c != WorkerCommand::disconnect;
}

std::string_view command_name(Role role, std::uint8_t command) {
  if (role == Role::client) {
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
  switch (static_cast<WorkerCommand>(command)) {
    case WorkerCommand::ready:
      return "READY";
    case WorkerCommand::request:
      return "REQUEST";
    case WorkerCommand::partial:
      return "PARTIAL";
    case WorkerCommand::final:
      return "FINAL";
    case WorkerCommand::heartbeat:
      return "HEARTBEAT";
    case WorkerCommand::disconnect:
      return "DISCONNECT";
    case WorkerCommand::error:
      return "ERROR";
    case WorkerCommand::cancel:
      return "CANCEL";
  }
  return "?";
}

std::vector<Buffer> encode(const Envelope& e) {
  if (!valid_command(e.role, e.command)) {
    throw Failure(StatusCode::invalid_argument,
                  "cannot encode unknown command " + std::to_string(e.command));
  }
  std::vector<Buffer> frames;
  const bool full = carries_request(e.role, e.command);
  frames.reserve(full ? 5 + e.payload.arrays.size() : 3);
  frames.push_back(Buffer::copy_of(e.role == Role::client ? kClientProtocol : kWorkerProtocol));
  std::byte cmd{e.command};
  frames.push_back(Buffer::copy_of(&cmd, 1));
  frames.push_back(Buffer::copy_of(e.service));
  if (!full) return frames;

  frames.push_back(u64_frame(e.request_id));
  nlohmann::json header = nlohmann::json::object();
  if (!e.method.empty()) header["method"] = e.method;
  if (e.timeout_ms > 0) header["timeout_ms"] = e.timeout_ms;
  if (!e.payload.meta.is_null() && !(e.payload.meta.is_object() && e.payload.meta.empty())) {
    header["meta"] = e.payload.meta;
  }
  if (e.error) {
    header["error"] = {{"code", std::string(to_string(e.error->code))},
                       {"type", e.error->type},
                       {"message", e.error->message}};
    if (!e.error->traceback.empty()) header["error"]["traceback"] = e.error->traceback;
  }
  if (!e.payload.arrays.empty()) {
    auto arrays = nlohmann::json::array();
    for (const Array& a : e.payload.arrays) {
      nlohmann::json d = {{"dtype", std::string(to_numpy(a.dtype()))}, {"shape", a.shape()}};
      if (!a.name().empty()) d["name"] = a.name();
      arrays.push_back(std::move(d));
    }
    header["arrays"] = std::move(arrays);
  }
  auto bytes = encode_msgpack(header);
  frames.push_back(Buffer::from_vector(std::move(bytes)));
  for (const Array& a : e.payload.arrays) frames.push_back(a.buffer());
  return frames;
}

Result<Envelope> decode(std::span<const Buffer> frames, const DecodeLimits& limits) {
  if (frames.size() < 3) return bad<Envelope>("envelope needs at least 3 frames");
  Envelope e;
  const auto proto = as_text(frames[0]);
  if (proto == kClientProtocol) {
    e.role = Role::client;
  } else if (proto == kWorkerProtocol) {
    e.role = Role::worker;
  } else {
    return bad<Envelope>("unknown protocol id (expected ACHC01 or ACHW01)");
  }
  if (frames[1].size() != 1) return bad<Envelope>("command frame must be one byte");
  e.command = static_cast<std::uint8_t>(frames[1].data()[0]);
  if (!valid_command(e.role, e.command)) return bad<Envelope>("unknown command");
  e.service = std::string(as_text(frames[2]));
  if (!carries_request(e.role, e.command)) {
    if (frames.size() != 3) return bad<Envelope>("control command carries extra frames");
    return e;
  }
  if (frames.size() < 5) return bad<Envelope>("request command needs id and header frames");
  if (frames[3].size() != 8) return bad<Envelope>("request id frame must be 8 bytes");
  e.request_id = read_u64(frames[3]);
  if (frames[4].size() > limits.max_header_bytes) return bad<Envelope>("header frame too large");
  auto header = decode_msgpack({frames[4].data(), frames[4].size()});
  if (!header) return header.error();
  const nlohmann::json& h = *header;
  if (!h.is_object()) return bad<Envelope>("header must be a map");

  if (auto it = h.find("method"); it != h.end()) {
    if (!it->is_string()) return bad<Envelope>("header.method must be a string");
    e.method = it->get<std::string>();
  }
  if (auto it = h.find("timeout_ms"); it != h.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 0) {
      return bad<Envelope>("header.timeout_ms must be a non-negative integer");
    }
    e.timeout_ms = it->get<std::int64_t>();
  }
  if (auto it = h.find("meta"); it != h.end()) e.payload.meta = *it;
  if (auto it = h.find("error"); it != h.end()) {
    if (!it->is_object()) return bad<Envelope>("header.error must be a map");
    RemoteError err;
    auto text = [&](const char* key, std::string& out) {
      auto f = it->find(key);
      if (f != it->end() && f->is_string()) out = f->get<std::string>();
    };
    std::string code;
    text("code", code);
    err.code = status_code_from_string(code);
    text("type", err.type);
    text("message", err.message);
    text("traceback", err.traceback);
    e.error = std::move(err);
  }
  std::size_t n_arrays = 0;
  const nlohmann::json* arrays = nullptr;
  if (auto it = h.find("arrays"); it != h.end()) {
    if (!it->is_array()) return bad<Envelope>("header.arrays must be a list");
    arrays = &*it;
    n_arrays = it->size();
  }
  if (n_arrays > limits.max_arrays) return bad<Envelope>("too many arrays");
  if (frames.size() != 5 + n_arrays) {
    return bad<Envelope>("header lists " + std::to_string(n_arrays) + " arrays but " +
                         std::to_string(frames.size() - 5) + " array frames follow");
  }
  e.payload.arrays.reserve(n_arrays);
  for (std::size_t i = 0; i < n_arrays; ++i) {
    const nlohmann::json& d = (*arrays)[i];
    const std::string at = "header.arrays[" + std::to_string(i) + "]";
    if (!d.is_object()) return bad<Envelope>(at + " must be a map");
    auto dt = d.find("dtype");
    if (dt == d.end() || !dt->is_string()) return bad<Envelope>(at + ".dtype missing");
    auto dtype = dtype_from_numpy(dt->get<std::string>());
    if (!dtype) return bad<Envelope>(at + ".dtype unsupported");
    std::vector<std::int64_t> shape;
    auto sh = d.find("shape");
    if (sh == d.end()) {
      shape.push_back(static_cast<std::int64_t>(frames[5 + i].size() / itemsize(*dtype)));
    } else {
      if (!sh->is_array() || sh->size() > limits.max_ndim) {
        return bad<Envelope>(at + ".shape must be a short list");
      }
      for (const auto& s : *sh) {
        if (!s.is_number_integer() || s.get<std::int64_t>() < 0) {
          return bad<Envelope>(at + ".shape entries must be non-negative integers");
        }
        shape.push_back(s.get<std::int64_t>());
      }
    }
    std::string name;
    if (auto nm = d.find("name"); nm != d.end()) {
      if (!nm->is_string()) return bad<Envelope>(at + ".name must be a string");
      name = nm->get<std::string>();
    }
    try {
      e.payload.arrays.emplace_back(*dtype, std::move(shape), frames[5 + i], std::move(name));
    } catch (const Failure& f) {
      return bad<Envelope>(at + ": " + f.what());
    }
  }
  return e;
}

Envelope make_request(std::string service, std::uint64_t id, std::string method, Payload payload,
                      std::int64_t timeout_ms) {
  Envelope e;
  e.role = Role::client;
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
  e.role = Role::client;
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

}  // namespace acheron::wire
