// Typed integer ids: an index that cannot be mixed up with another kind of id.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>

namespace acheron {

// OpaqueId<struct SolidTag> and OpaqueId<struct ChannelTag> are different
// types. A default-constructed id is invalid.
template <class Tag, class T = std::uint32_t>
class OpaqueId {
 public:
  using size_type = T;
  static constexpr T invalid_value = std::numeric_limits<T>::max();

  constexpr OpaqueId() noexcept = default;
  explicit constexpr OpaqueId(T value) noexcept : value_(value) {}

  constexpr bool valid() const noexcept { return value_ != invalid_value; }
  explicit constexpr operator bool() const noexcept { return valid(); }
  constexpr T get() const noexcept { return value_; }
  constexpr T unchecked_get() const noexcept { return value_; }

  friend constexpr auto operator<=>(OpaqueId, OpaqueId) noexcept = default;

 private:
  T value_ = invalid_value;
};

}  // namespace acheron

template <class Tag, class T>
struct std::hash<acheron::OpaqueId<Tag, T>> {
  std::size_t operator()(acheron::OpaqueId<Tag, T> id) const noexcept {
    return std::hash<T>{}(id.unchecked_get());
  }
};
