// Internal to the xos codec (Xos.cc, XosMessages.cc): character classes and
// the failure helper both the framing and the message parser use. Not for
// clients.
#pragma once

#include <string>

#include "acheron/wire/Xos.hh"

namespace acheron::wire::xos {

inline bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f';
}
inline bool is_blank(char c) {
  return c == ' ' || c == '\0';
}
inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

template <class T>
inline Result<T> fail(std::string message) {
  return Result<T>::failure(StatusCode::invalid_argument, std::move(message));
}

}  // namespace acheron::wire::xos
