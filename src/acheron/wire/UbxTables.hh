// Lookup tables of the UBX protocol: configuration keys (name, key id, value
// type) and message identities. The data lives in ubx_tables.toml, from which
// scripts/gen-ubx-tables.py generates UbxTables.cc at build time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace acheron::wire::ubx {

// Value type of a configuration key, as the u-blox interface descriptions
// name them: L boolean (one byte), U/I unsigned/signed integer, E enumeration,
// X bit field, R IEEE-754 float; the digit is the size in bytes.
enum class KeyType : std::uint8_t {
  L,
  U1,
  U2,
  U4,
  U8,
  I1,
  I2,
  I4,
  I8,
  E1,
  E2,
  E4,
  X1,
  X2,
  X4,
  X8,
  R4,
  R8
};

struct CfgKey {
  std::string_view name;  // e.g. "CFG_TP_FREQ_TP1"
  std::uint32_t id = 0;   // e.g. 0x40050024
  KeyType type = KeyType::U1;
};

struct MessageName {
  std::uint8_t cls = 0;
  std::uint8_t id = 0;
  std::string_view name;  // e.g. "TIM-TP"
};

struct ClassName {
  std::uint8_t cls = 0;
  std::string_view name;  // e.g. "TIM"
};

namespace detail {
extern const CfgKey kCfgKeys[];  // sorted by name
extern const std::size_t kCfgKeyCount;
extern const MessageName kMessageNames[];  // sorted by (cls, id)
extern const std::size_t kMessageNameCount;
extern const ClassName kClassNames[];  // sorted by cls
extern const std::size_t kClassNameCount;
}  // namespace detail

}  // namespace acheron::wire::ubx
