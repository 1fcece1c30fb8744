// Values that cross the wire in remote calls and streams: a MessagePack tree
// (nlohmann::json) in which arrays are references to raw array frames.
//
// An array inside a value is the MessagePack extension type kArrayExt (1)
// whose 4 data bytes are the little-endian index of the array in the
// message's array list; the array's dtype and shape travel in the envelope
// header and its bytes in their own frame. Nothing is pickled.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "acheron/core/Error.hh"
#include "acheron/core/Payload.hh"

namespace acheron::remote {

using Json = nlohmann::json;

inline constexpr std::uint8_t kArrayExt = 1;

// A reference to arrays[index].
Json array_ref(std::size_t index);
// The index if j is an array reference.
std::optional<std::size_t> array_ref_index(const Json& j);

// A value with the arrays it references.
struct Value {
  Json data;
  std::vector<Array> arrays;

  Value() = default;
  Value(Json d) : data(std::move(d)) {}                         // NOLINT: implicit by design
  Value(Array a) : data(array_ref(0)), arrays{std::move(a)} {}  // NOLINT

  // Adds an array and returns the reference to put into data.
  Json add(Array a);
  // The array a reference points to; throws Failure(invalid_argument).
  const Array& array(const Json& ref) const;
  // data as an Array (it must be a reference).
  const Array& as_array() const { return array(data); }
  template <class T>
  T as() const;
};

// Thrown by conversions and argument binding; becomes an invalid_argument
// error reply naming the argument.
[[noreturn]] void throw_bad_argument(const std::string& what);

// Type names for introspection ("int", "float", "str", "bool", "array", "any", ...).
template <class T>
std::string type_name();

// Converts a wire value to T (Array: resolves the reference; Json: as is).
template <class T>
T from_wire(const Json& j, const std::vector<Array>& arrays, std::string_view what);

// Appends a C++ value to out (Array: adds a frame; Value: merges).
template <class T>
Json to_wire(T&& value, std::vector<Array>& arrays);

// ---------------------------------------------------------------------------

template <class T>
using Bare = std::remove_cvref_t<T>;

template <class T>
std::string type_name() {
  using U = Bare<T>;
  if constexpr (std::is_same_v<U, bool>)
    return "bool";
  else if constexpr (std::is_integral_v<U>)
    return "int";
  else if constexpr (std::is_floating_point_v<U>)
    return "float";
  else if constexpr (std::is_same_v<U, std::string> || std::is_same_v<U, std::string_view>)
    return "str";
  else if constexpr (std::is_same_v<U, Array>)
    return "array";
  else if constexpr (std::is_same_v<U, Json> || std::is_same_v<U, Value>)
    return "any";
  else
    return "object";
}

template <class T>
T from_wire(const Json& j, const std::vector<Array>& arrays, std::string_view what) {
  using U = Bare<T>;
  if constexpr (std::is_same_v<U, Array>) {
    auto idx = array_ref_index(j);
    if (idx && *idx < arrays.size()) return arrays[*idx];
    // A plain list of numbers (from JSON, the CLI or a Python list) becomes a
    // one-dimensional float64 array.
    if (j.is_array() &&
        std::all_of(j.begin(), j.end(), [](const Json& x) { return x.is_number(); })) {
      std::vector<double> v;
      v.reserve(j.size());
      for (const Json& x : j) v.push_back(x.get<double>());
      return Array::from_vector(std::move(v));
    }
    throw_bad_argument(std::string(what) + ": expected an array");
  } else if constexpr (std::is_same_v<U, Json>) {
    return j;
  } else if constexpr (std::is_same_v<U, Value>) {
    Value v;
    v.data = j;
    v.arrays = arrays;
    return v;
  } else {
    if constexpr (std::is_arithmetic_v<U> && !std::is_same_v<U, bool>) {
      if (!j.is_number()) {
        throw_bad_argument(std::string(what) + ": expected " + type_name<U>() + ", got " +
                           j.type_name());
      }
      if constexpr (std::is_integral_v<U>) {
        if (j.is_number_float()) {
          throw_bad_argument(std::string(what) + ": expected int, got a float");
        }
      }
    }
    try {
      return j.get<U>();
    } catch (const nlohmann::json::exception&) {
      throw_bad_argument(std::string(what) + ": expected " + type_name<U>() + ", got " +
                         j.type_name());
    }
  }
}

template <class T>
Json to_wire(T&& value, std::vector<Array>& arrays) {
  using U = Bare<T>;
  if constexpr (std::is_same_v<U, Array>) {
    arrays.push_back(std::forward<T>(value));
    return array_ref(arrays.size() - 1);
  } else if constexpr (std::is_same_v<U, Value>) {
    // Renumber the value's references after the arrays already present.
    const std::size_t base = arrays.size();
    for (const Array& a : value.arrays) arrays.push_back(a);
    if (base == 0) return value.data;
    Json d = value.data;
    auto shift = [base](auto&& self, Json& x) -> void {
      if (auto i = array_ref_index(x)) {
        x = array_ref(*i + base);
      } else if (x.is_array() || x.is_object()) {
        for (auto& c : x) self(self, c);
      }
    };
    shift(shift, d);
    return d;
  } else {
    return Json(std::forward<T>(value));
  }
}

template <class T>
T Value::as() const {
  return from_wire<T>(data, arrays, "value");
}

}  // namespace acheron::remote
