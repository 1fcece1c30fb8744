// Result<T>: a value or a (StatusCode, message) error, for code that must not
// throw on bad input (codecs, per-request paths).
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "acheron/core/Error.hh"

namespace acheron {

struct ErrorInfo {
  StatusCode code = StatusCode::unknown;
  std::string message;
};

template <class T>
class [[nodiscard]] Result final {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(ErrorInfo error) : v_(std::move(error)) {}  // NOLINT

  static Result failure(StatusCode code, std::string message) {
    return Result(ErrorInfo{code, std::move(message)});
  }

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return check(), std::get<0>(v_); }
  const T& value() const& { return check(), std::get<0>(v_); }
  T&& value() && { return check(), std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const ErrorInfo& error() const { return std::get<1>(v_); }

 private:
  void check() const {
    if (!ok()) throw Failure(error().code, error().message);
  }
  std::variant<T, ErrorInfo> v_;
};

}  // namespace acheron
