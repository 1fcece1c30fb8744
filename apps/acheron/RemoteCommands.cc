// `acheron remote list|call|stream|enable|disable|serve-demo`: remote
// objects from a shell (docs/remote.md).
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "Commands.hh"
#include "Durations.hh"
#include "Endpoints.hh"
#include "HttpChoice.hh"
#include "Ready.hh"
#include "Signals.hh"
#include "acheron/core/Log.hh"
#include "acheron/remote/Client.hh"
#include "acheron/remote/Monitor.hh"
#include "acheron/remote/Server.hh"

namespace acheron::app {
namespace {

using remote::Json;
using namespace std::chrono_literals;

// A command-line argument as a value: JSON if it parses, else a string.
Json parse_arg(const std::string& text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? Json(text) : j;
}

Json array_json(const Array& a) {
  Json j = {{"dtype", std::string(to_numpy(a.dtype()))}, {"shape", a.shape()}};
  if (a.size() > 64) return j;
  Json data = Json::array();
  const auto* p = a.buffer().data();
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto at = [&](auto tag) {
      using T = decltype(tag);
      T v;
      std::memcpy(&v, p + i * sizeof(T), sizeof(T));
      return v;
    };
    switch (a.dtype()) {
      case DType::bool_:
        data.push_back(at(std::uint8_t{}) != 0);
        break;
      case DType::int8:
        data.push_back(at(std::int8_t{}));
        break;
      case DType::uint8:
        data.push_back(at(std::uint8_t{}));
        break;
      case DType::int16:
        data.push_back(at(std::int16_t{}));
        break;
      case DType::uint16:
        data.push_back(at(std::uint16_t{}));
        break;
      case DType::int32:
        data.push_back(at(std::int32_t{}));
        break;
      case DType::uint32:
        data.push_back(at(std::uint32_t{}));
        break;
      case DType::int64:
        data.push_back(at(std::int64_t{}));
        break;
      case DType::uint64:
        data.push_back(at(std::uint64_t{}));
        break;
      case DType::float32:
        data.push_back(at(float{}));
        break;
      case DType::float64:
        data.push_back(at(double{}));
        break;
      default:
        return j;  // complex: summary only
    }
  }
  j["data"] = std::move(data);
  return j;
}

// A value for printing: array references become {dtype, shape, data}.
Json printable(const Json& j, const std::vector<Array>& arrays) {
  if (auto i = remote::array_ref_index(j); i && *i < arrays.size()) return array_json(arrays[*i]);
  if (j.is_binary()) return Json{{"bytes", j.get_binary().size()}};
  if (j.is_array() || j.is_object()) {
    Json out = j.is_array() ? Json::array() : Json::object();
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (j.is_array()) {
        out.push_back(printable(*it, arrays));
      } else {
        out[it.key()] = printable(*it, arrays);
      }
    }
    return out;
  }
  return j;
}

struct Common {
  std::string endpoint;
  double timeout_s = 3;
  std::string stream_endpoint;
};

void add_common(CLI::App* cmd, Common& c) {
  cmd->add_option("--connect", c.endpoint,
                  "the server's call endpoint, e.g. tcp://127.0.0.1:5555 (required)");
  add_duration_option(cmd, "--timeout", c.timeout_s, "deadline per call");
  add_deprecated_duration(cmd, "--timeout-ms", "--timeout", 1e-3, c.timeout_s);
  // The old spelling, the endpoint before NAME, is read by take_endpoint.
  cmd->allow_extras();
}

bool looks_like_endpoint(const std::string& s) {
  return s.starts_with("tcp://") || s.starts_with("ipc://") || s.starts_with("inproc://");
}

// The endpoint of a command with a NAME positional: --connect, or (the old
// spelling, with a warning) an endpoint-looking first positional, which then
// shifts NAME to the next one. Returns the positional arguments after NAME.
std::vector<std::string> take_endpoint(CLI::App* cmd, Common& c, std::string* name) {
  auto rest = cmd->remaining();
  if (c.endpoint.empty()) {
    std::string* first = name;
    if (!name && !rest.empty()) first = &rest.front();
    if (first && looks_like_endpoint(*first)) {
      warn_deprecated("the endpoint as the first positional argument", "--connect " + *first);
      c.endpoint = *first;
      if (name) {
        if (rest.empty()) throw CLI::RequiredError("name");
        *name = rest.front();
      }
      rest.erase(rest.begin());
    }
  }
  if (c.endpoint.empty()) throw CLI::RequiredError("--connect");
  return rest;
}

// As take_endpoint, for a command that takes nothing after NAME.
void take_endpoint_only(CLI::App* cmd, Common& c, std::string* name) {
  const auto rest = take_endpoint(cmd, c, name);
  if (!rest.empty()) throw CLI::ExtrasError(cmd->get_name(), rest);
}

remote::RemoteClient make_client(const Common& c) {
  return remote::RemoteClient(remote::ClientOptions{.endpoint = c.endpoint,
                                                    .stream_endpoint = c.stream_endpoint,
                                                    .timeout = to_duration(c.timeout_s)});
}

void add_demo_server(CLI::App& remote_cmd, int* exit_code) {
  struct Opts {
    std::string bind = "tcp://127.0.0.1:5555";
    std::string stream_bind = "tcp://127.0.0.1:5556";
    std::string http;
    remote::ServerOptions defaults;
    std::size_t threads = defaults.threads;
    std::size_t max_queued = defaults.max_queued;
    std::int64_t max_message_size = defaults.max_message_size;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = remote_cmd.add_subcommand(
      "serve-demo",
      "a demonstration server: calls add, echo, scale, fail, sleep, count, set_gain; "
      "streams counter (10 Hz), sine (50 Hz array), ticks (manual), status (disabled)");
  cmd->add_option("--bind", o->bind, "call endpoint (one; 'tcp://127.0.0.1:*' picks a free port)")
      ->capture_default_str();
  cmd->add_option("--stream-bind", o->stream_bind, "stream endpoint (one)")->capture_default_str();
  add_http_option(cmd, o->http);
  cmd->add_option("--threads", o->threads, "calls running at once")
      ->check(CLI::Range(std::size_t{1}, std::size_t{256}))
      ->capture_default_str();
  cmd->add_option("--max-queued", o->max_queued,
                  "calls that may wait for a call thread; more are answered 'server busy'")
      ->capture_default_str();
  cmd->add_option("--max-message-size", o->max_message_size,
                  "largest frame a client or subscriber may send, in bytes (0: no limit); a "
                  "larger one disconnects it")
      ->capture_default_str();
  cmd->callback([o, exit_code] {
    SignalWatcher signals;
    remote::RemoteServer server({.rpc_bind = o->bind,
                                 .stream_bind = o->stream_bind,
                                 .name = "demo",
                                 .threads = o->threads,
                                 .max_queued = o->max_queued,
                                 .max_message_size = o->max_message_size});
    server.add_call("add", [](double a, double b) { return a + b; },
                    {.doc = "a + b", .params = {{"a"}, {"b", "any", Json(0.0)}}});
    server.add_call("echo",
                    [](const remote::Args& a) {
                      return remote::Value(Json{{"args", a.positional()}, {"kwargs", a.keyword()}});
                    },
                    {.doc = "returns its positional and keyword arguments"});
    server.add_call("scale",
                    [](const Array& values, double k) {
                      auto v = values.to_vector<double>();
                      for (double& x : v) x *= k;
                      return Array::from_vector(std::move(v), values.shape());
                    },
                    {.doc = "values * k (float64 array)", .params = {{"values"}, {"k"}}});
    server.add_call("fail",
                    [](const std::string& message) -> bool { throw std::runtime_error(message); },
                    {.doc = "raises std::runtime_error(message)", .params = {{"message"}}});
    server.add_call("sleep",
                    [](double seconds) {
                      std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
                      return seconds;
                    },
                    {.doc = "sleeps, then returns the seconds", .params = {{"seconds"}}});
    server.add_call(
        "count",
        [](int n, double interval) {
          // Progress values 1..n, one per interval; stops early when cancelled.
          remote::CallContext* call = remote::current_call();
          for (int i = 1; i <= n; ++i) {
            call->check_cancelled();
            call->progress(remote::Value(Json(i)));
            std::this_thread::sleep_for(std::chrono::duration<double>(interval));
          }
          return n;
        },
        {.doc = "sends progress values 1..n, one every interval seconds, then returns n",
         .params = {{"n"}, {"interval", "any", Json(0.0)}}});
    auto gain = std::make_shared<std::atomic<double>>(1.0);
    server.add_call(
        "set_gain", [gain](double g) { gain->store(g); },
        {.doc = "sets the sine amplitude (mutating)", .params = {{"gain"}}, .mutating = true});
    auto counter = std::make_shared<std::atomic<std::int64_t>>(0);
    server.add_stream("counter", 10, [counter] { return remote::Value(Json(++*counter)); },
                      {.doc = "an integer counting up at 10 Hz"});
    auto phase = std::make_shared<double>(0);
    server.add_stream("sine", 50,
                      [phase, gain] {
                        std::vector<float> v(16);
                        for (std::size_t i = 0; i < v.size(); ++i) {
                          v[i] = static_cast<float>(
                              gain->load() * std::sin(*phase + 0.4 * static_cast<double>(i)));
                        }
                        *phase += 0.1;
                        return remote::Value(Array::from_vector(std::move(v)));
                      },
                      {.doc = "16 float32 samples of a moving sine at 50 Hz"});
    server.add_stream(
        "status", 1,
        [] {
          return remote::Value(Json{{"ok", true}});
        },
        {.doc = "created disabled: enable it with `acheron remote enable`", .enabled = false});
    auto ticks = server.add_manual_stream("ticks", {.doc = "published by the application, 2 Hz"});
    std::atomic<bool> stop{false};
    server.start();
    std::shared_ptr<remote::RemoteMonitor> monitor;
    std::unique_ptr<net::HttpFront> http;
    if (!o->http.empty()) {
      monitor = remote::RemoteMonitor::create(server, "remote", {{"server", "serve-demo"}});
      auto registry = std::make_shared<hub::Registry>();
      registry->add(monitor->service());
      http = start_http(o->http, registry);
    }
    std::vector<ReadyEndpoint> ready = {{"call", server.rpc_endpoint()},
                                        {"stream", server.stream_endpoint()}};
    add_http_endpoint(ready, http.get());
    print_ready("remote serve-demo", ready);
    signals.set_target([&stop] { stop = true; });
    std::int64_t n = 0;
    while (!stop) {
      ticks.publish(remote::Value(Json{{"tick", n++}}));
      for (int i = 0; i < 50 && !stop; ++i) std::this_thread::sleep_for(10ms);
    }
    if (http) http->stop();
    server.stop();
    *exit_code = kOk;
  });
}

}  // namespace

void add_remote_commands(CLI::App& app, int* exit_code) {
  auto* remote_cmd = app.add_subcommand("remote", "remote objects: list, call, stream, serve-demo");
  remote_cmd->require_subcommand(1);

  {
    auto c = std::make_shared<Common>();
    auto json = std::make_shared<bool>(false);
    auto* cmd =
        remote_cmd->add_subcommand("list", "the server's calls (with signatures) and streams");
    add_common(cmd, *c);
    cmd->add_flag("--json", *json, "print one JSON document");
    cmd->callback([cmd, c, json, exit_code] {
      take_endpoint_only(cmd, *c, nullptr);
      auto client = make_client(*c);
      const Json calls = client.list_calls();
      const Json streams = client.list_streams();
      if (*json) {
        std::printf("%s\n", Json{{"calls", calls}, {"streams", streams}}.dump(2).c_str());
        *exit_code = kOk;
        return;
      }
      std::printf("calls:\n");
      for (const Json& call : calls) {
        std::string sig;
        for (const Json& p : call.value("params", Json::array())) {
          if (!sig.empty()) sig += ", ";
          sig += p.value("name", "") + ": " + p.value("type", "any");
          if (p.contains("default")) sig += " = " + p["default"].dump();
        }
        if (call.value("variadic", false)) sig += sig.empty() ? "*args, **kwargs" : ", ...";
        std::printf("  %s(%s) -> %s%s%s%s\n", call.value("name", "").c_str(), sig.c_str(),
                    call.value("returns", "any").c_str(),
                    call.value("mutating", false) ? " [mutating]" : "",
                    call.value("doc", "").empty() ? "" : "  # ", call.value("doc", "").c_str());
      }
      std::printf("streams:\n");
      for (const Json& s : streams) {
        std::string rate =
            s.contains("rate_hz") ? " " + std::to_string(s["rate_hz"].get<double>()) + " Hz" : "";
        std::printf("  %s (%s%s, %s, %llu published)%s%s\n", s.value("name", "").c_str(),
                    s.value("kind", "").c_str(), rate.c_str(),
                    s.value("enabled", false) ? "enabled" : "disabled",
                    static_cast<unsigned long long>(s.value("published", std::uint64_t{0})),
                    s.value("doc", "").empty() ? "" : "  # ", s.value("doc", "").c_str());
      }
      *exit_code = kOk;
    });
  }
  {
    struct Opts {
      Common c;
      std::string name;
      std::vector<std::string> kwargs;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = remote_cmd->add_subcommand(
        "call", "call NAME with arguments (each parsed as JSON, else taken as a string)");
    add_common(cmd, o->c);
    cmd->add_option("name", o->name, "the call")->required();
    // Positional arguments are taken as extras (add_common), verbatim: a
    // vector option would split a JSON list such as [1,2,3] into three.
    cmd->footer("ARGS...: positional arguments after NAME, each parsed as JSON, else a string");
    cmd->add_option("--kw", o->kwargs, "keyword argument NAME=VALUE (repeatable)");
    cmd->callback([o, exit_code, cmd] {
      remote::CallArgs a;
      for (const auto& s : take_endpoint(cmd, o->c, &o->name)) a.args.push_back(parse_arg(s));
      for (const auto& kv : o->kwargs) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) {
          throw SetupError("--kw '" + kv + "' is not NAME=VALUE (missing '=') write e.g. --kw k=2");
        }
        a.kwargs[kv.substr(0, eq)] = parse_arg(kv.substr(eq + 1));
      }
      auto client = make_client(o->c);
      try {
        // Progress values (if the call sends any) print as they come.
        const remote::Value v =
            client.call(o->name, a, remote::CallOptions{.on_progress = [](const remote::Value& p) {
                          std::printf("progress %s\n", printable(p.data, p.arrays).dump().c_str());
                          std::fflush(stdout);
                          return true;
                        }});
        std::printf("%s\n", printable(v.data, v.arrays).dump().c_str());
        *exit_code = kOk;
      } catch (const remote::RemoteException& e) {
        std::fprintf(stderr, "acheron: remote error %s (%s): %s\n", e.type().c_str(),
                     std::string(to_string(e.code())).c_str(), e.remote_message().c_str());
        *exit_code = kFailure;
      }
    });
  }
  {
    struct Opts {
      Common c;
      std::string name;
      std::string mode = "queue";
      long count = 0;
      double seconds = 0;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = remote_cmd->add_subcommand(
        "stream", "print a stream's values as JSON lines {stream, seq, wall_ns, value}");
    add_common(cmd, o->c);
    cmd->add_option("name", o->name, "the stream")->required();
    cmd->add_option("--stream-connect", o->c.stream_endpoint,
                    "the server's stream endpoint (default: asked from the server)");
    add_deprecated_alias(cmd, "--stream-endpoint", "--stream-connect", o->c.stream_endpoint);
    cmd->add_option("--mode", o->mode, "queue (every value) or cache (latest only)")
        ->check(CLI::IsMember({"queue", "cache"}))
        ->capture_default_str();
    cmd->add_option("--count", o->count, "stop after N values (0: no limit)");
    add_duration_option(cmd, "--duration", o->seconds, "stop after this long (0s: no limit)");
    add_deprecated_duration(cmd, "--seconds", "--duration", 1, o->seconds);
    cmd->callback([cmd, o, exit_code] {
      take_endpoint_only(cmd, o->c, &o->name);
      SignalWatcher signals;
      std::atomic<bool> stop{false};
      signals.set_target([&stop] { stop = true; });
      auto client = make_client(o->c);
      auto sub = client.subscribe(
          o->name,
          {.mode = o->mode == "cache" ? remote::ReceiveMode::cache : remote::ReceiveMode::queue});
      const auto end = o->seconds > 0
                           ? Clock::now() + std::chrono::duration_cast<Duration>(
                                                std::chrono::duration<double>(o->seconds))
                           : TimePoint::max();
      long n = 0;
      while (!stop && Clock::now() < end && (o->count == 0 || n < o->count)) {
        auto v = sub->next(100ms);
        if (!v) continue;
        Json line = {{"stream", v->stream},
                     {"seq", v->seq},
                     {"wall_ns", v->wall_ns},
                     {"value", printable(v->value.data, v->value.arrays)}};
        if (v->error) line["error"] = {{"type", v->error->type}, {"message", v->error->message}};
        std::printf("%s\n", line.dump().c_str());
        std::fflush(stdout);
        ++n;
      }
      if (n == 0 && !stop) {
        std::fprintf(stderr, "acheron: no value from stream '%s'\n", o->name.c_str());
        *exit_code = kUnavailable;
        return;
      }
      *exit_code = kOk;
    });
  }
  for (const char* verb : {"enable", "disable"}) {
    auto c = std::make_shared<Common>();
    auto name = std::make_shared<std::string>();
    const bool on = std::string(verb) == "enable";
    auto* cmd = remote_cmd->add_subcommand(verb, std::string(verb) + " a stream on the server");
    add_common(cmd, *c);
    cmd->add_option("name", *name, "the stream")->required();
    cmd->callback([cmd, c, name, on, exit_code] {
      take_endpoint_only(cmd, *c, name.get());
      auto client = make_client(*c);
      try {
        on ? client.enable_stream(*name) : client.disable_stream(*name);
        *exit_code = kOk;
      } catch (const remote::RemoteException& e) {
        std::fprintf(stderr, "acheron: %s\n", e.remote_message().c_str());
        *exit_code = kFailure;
      }
    });
  }
  add_demo_server(*remote_cmd, exit_code);
}

}  // namespace acheron::app
