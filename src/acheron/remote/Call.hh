// Registered calls: what a handler receives (positional and keyword
// arguments, arrays), the declared signature used for introspection and
// argument checking, and the binding of typed C++ functions.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "acheron/core/Clock.hh"
#include "acheron/remote/Value.hh"

namespace acheron::remote {

// Where a call runs on the server.
enum class Threading {
  pool,       // on a call thread of its own: a slow call never delays other calls or stream control
  io_thread,  // in the thread that reads requests: for quick calls that never block
};

struct Param {
  std::string name;
  std::string type = "any";
  std::optional<Json> default_value;  // absent: required
};

struct CallInfo {
  std::string doc;
  std::vector<Param>
      params;             // for typed functions, names (and defaults) in order; types are filled in
  std::string returns;    // filled in for typed functions
  bool mutating = false;  // needs the write lock when the server enforces one
  Threading threading = Threading::pool;
  bool variadic = false;  // accepts any arguments (generic handlers)
};

// The arguments of one call.
class Args final {
 public:
  Args() = default;
  Args(Json positional, Json keyword, std::vector<Array> arrays);

  std::size_t size() const noexcept { return positional_.size(); }
  const Json& positional() const noexcept { return positional_; }
  const Json& keyword() const noexcept { return keyword_; }
  const std::vector<Array>& arrays() const noexcept { return arrays_; }

  // Positional argument i, else the keyword argument `name`, else nullptr.
  const Json* find(std::size_t i, std::string_view name) const;
  // Like find() but converts; throws an invalid_argument Failure naming the argument.
  template <class T>
  T get(std::size_t i, std::string_view name) const;
  template <class T>
  T get(std::size_t i, std::string_view name, T fallback) const;
  // The array a reference points to.
  const Array& array(const Json& ref) const;

 private:
  Json positional_ = Json::array();
  Json keyword_ = Json::object();
  std::vector<Array> arrays_;
};

using Handler = std::function<Value(const Args&)>;

// What a running call knows about itself: whether the caller cancelled it
// (or its deadline passed), and a way to send progress values (PARTIAL
// replies) before the result. Handlers reach it through current_call().
class CallContext final {
 public:
  using ProgressSink = std::function<bool(Value)>;
  CallContext(std::string method, TimePoint deadline, ProgressSink sink)
      : method_(std::move(method)), deadline_(deadline), sink_(std::move(sink)) {}

  const std::string& method() const noexcept { return method_; }
  TimePoint deadline() const noexcept { return deadline_; }
  // True once the caller sent CANCEL or the call's deadline passed: the
  // result would not be read, so a long handler should return early.
  bool cancelled() const noexcept;
  // Throws Failure(cancelled) if cancelled().
  void check_cancelled() const;
  // Sends value to the caller as a progress reply (PARTIAL) before the
  // result; false if the call was cancelled or the reply could not be sent.
  bool progress(Value value);

  // The caller sent CANCEL (the server then sends no reply).
  bool cancel_requested() const noexcept { return cancelled_.load(std::memory_order_relaxed); }
  void cancel() noexcept { cancelled_.store(true, std::memory_order_relaxed); }

 private:
  std::string method_;
  TimePoint deadline_;
  ProgressSink sink_;
  std::atomic<bool> cancelled_{false};
};

// The context of the call the calling thread is running; nullptr outside a
// call handler.
CallContext* current_call() noexcept;

// Sets current_call() for the lifetime of the guard (used by servers).
class CurrentCall final {
 public:
  explicit CurrentCall(CallContext* context) noexcept;
  ~CurrentCall();
  CurrentCall(const CurrentCall&) = delete;
  CurrentCall& operator=(const CurrentCall&) = delete;

 private:
  CallContext* previous_;
};

// Checks args against a signature (counts, names, required); throws
// Failure(invalid_argument) with the reason.
void check_args(const std::string& call, const CallInfo& info, const Args& args);

namespace detail {

template <class F>
struct Signature : Signature<decltype(&F::operator())> {};
template <class R, class... A>
struct Signature<R (*)(A...)> {
  using Result = R;
  using Arguments = std::tuple<Bare<A>...>;
};
template <class R, class... A>
struct Signature<R(A...)> : Signature<R (*)(A...)> {};
template <class C, class R, class... A>
struct Signature<R (C::*)(A...) const> : Signature<R (*)(A...)> {};
template <class C, class R, class... A>
struct Signature<R (C::*)(A...)> : Signature<R (*)(A...)> {};

template <class Tuple, std::size_t... I>
void fill_types(CallInfo& info, std::index_sequence<I...>) {
  std::vector<std::string> types{type_name<std::tuple_element_t<I, Tuple>>()...};
  if (info.params.size() > types.size()) {
    throw SetupError("call declares " + std::to_string(info.params.size()) +
                     " parameter names but the function takes " + std::to_string(types.size()) +
                     " (mismatch) list one name per function parameter");
  }
  for (std::size_t i = 0; i < types.size(); ++i) {
    if (i >= info.params.size()) info.params.push_back({"arg" + std::to_string(i)});
    info.params[i].type = types[i];
  }
}

template <class Tuple, std::size_t... I>
Tuple bind(const CallInfo& info, const Args& args, std::index_sequence<I...>) {
  [[maybe_unused]] auto one = [&](auto tag, std::size_t i) {
    using T = typename decltype(tag)::type;
    const Param& p = info.params[i];
    const Json* j = args.find(i, p.name);
    if (!j) j = &*p.default_value;  // check_args guarantees a default exists
    return from_wire<T>(*j, args.arrays(), "argument '" + p.name + "'");
  };
  return Tuple{one(std::type_identity<std::tuple_element_t<I, Tuple>>{}, I)...};
}

}  // namespace detail

// Wraps a typed function into a Handler and completes info (types, names).
template <class F>
Handler make_handler(F f, CallInfo& info) {
  if constexpr (std::is_invocable_r_v<Value, F, const Args&>) {
    info.variadic = info.params.empty();
    if (info.returns.empty()) info.returns = "any";
    return Handler(std::move(f));
  } else {
    using Sig = detail::Signature<std::decay_t<F>>;
    using Tuple = typename Sig::Arguments;
    using R = typename Sig::Result;
    constexpr std::size_t n = std::tuple_size_v<Tuple>;
    detail::fill_types<Tuple>(info, std::make_index_sequence<n>{});
    info.returns = std::is_void_v<R> ? "none" : type_name<R>();
    auto bound_info = info;
    return [f = std::move(f), bound_info](const Args& args) -> Value {
      auto tuple = detail::bind<Tuple>(bound_info, args, std::make_index_sequence<n>{});
      if constexpr (std::is_void_v<R>) {
        std::apply(f, std::move(tuple));
        return Value{};
      } else {
        Value v;
        v.data = to_wire(std::apply(f, std::move(tuple)), v.arrays);
        return v;
      }
    };
  }
}

template <class T>
T Args::get(std::size_t i, std::string_view name) const {
  const Json* j = find(i, name);
  if (!j) throw_bad_argument("missing argument '" + std::string(name) + "'");
  return from_wire<T>(*j, arrays_, "argument '" + std::string(name) + "'");
}

template <class T>
T Args::get(std::size_t i, std::string_view name, T fallback) const {
  const Json* j = find(i, name);
  if (!j) return fallback;
  return from_wire<T>(*j, arrays_, "argument '" + std::string(name) + "'");
}

}  // namespace acheron::remote
