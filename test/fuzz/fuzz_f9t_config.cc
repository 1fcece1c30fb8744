// Fuzz target: the f9t_config of an InitF9t request as the UbloxControl
// server receives it: protobuf bytes of a google.protobuf.Struct, converted
// to JSON (struct_to_json, as the handler does) and validated by
// parse_f9t_config before anything touches a device.
//
// Invariants: nothing crashes; the only exceptions are Failure (the gRPC
// status the client gets) and SetupError; an accepted configuration is
// consistent (a device path, a 10-digit hex uid, supported baud and layers,
// each setting encoded to its key's size, each key once), groups into the
// same settings, and every value formats; JSON back to a Struct and again to
// JSON changes nothing.
#include <google/protobuf/struct.pb.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "FuzzInput.hh"
#include "acheron/core/Error.hh"
#include "acheron/gnss/Config.hh"
#include "acheron/gnss/Convert.hh"

namespace {

using namespace acheron;

// Bytes of a value of each CFG key type (u-blox interface description).
std::size_t key_size(wire::ubx::KeyType type) {
  using wire::ubx::KeyType;
  switch (type) {
    case KeyType::L:
    case KeyType::U1:
    case KeyType::E1:
    case KeyType::X1:
    case KeyType::I1:
      return 1;
    case KeyType::U2:
    case KeyType::E2:
    case KeyType::X2:
    case KeyType::I2:
      return 2;
    case KeyType::U4:
    case KeyType::E4:
    case KeyType::X4:
    case KeyType::I4:
    case KeyType::R4:
      return 4;
    default:
      return 8;
  }
}

void check_config(const gnss::F9tConfig& c) {
  FUZZ_CHECK(!c.device.empty());
  FUZZ_CHECK(c.uid.size() == 10);
  FUZZ_CHECK(std::all_of(c.uid.begin(), c.uid.end(), [](char ch) {
    return std::isdigit(static_cast<unsigned char>(ch)) || (ch >= 'A' && ch <= 'F');
  }));
  FUZZ_CHECK(c.baud >= 9600 && c.baud <= 921600);
  FUZZ_CHECK(c.apply_layers != 0 && (c.apply_layers & ~0x7u) == 0);
  std::set<const wire::ubx::CfgKey*> keys;
  for (const auto& s : c.settings) {
    FUZZ_CHECK(s.key != nullptr);
    FUZZ_CHECK(keys.insert(s.key).second);
    FUZZ_CHECK(s.raw.size() == key_size(s.key->type));
    FUZZ_CHECK(!gnss::format_value(s.key->type, s.raw).empty());
  }
  const auto groups = gnss::group_settings(c);
  FUZZ_CHECK(groups.signal.size() + groups.other.size() == c.settings.size());
  if (c.position) {
    FUZZ_CHECK(std::abs(c.position->lat_deg) <= 90 && std::abs(c.position->lon_deg) <= 180);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  google::protobuf::Struct request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;  // gRPC refuses it
  try {
    const nlohmann::json config = gnss::struct_to_json(request);
    FUZZ_CHECK(config.is_object());
    // JSON to Struct and back is stable (numbers are doubles both ways).
    google::protobuf::Struct again;
    gnss::json_to_struct(config, &again);
    FUZZ_CHECK(gnss::struct_to_json(again).dump() == config.dump());
    check_config(gnss::parse_f9t_config(config));
  } catch (const Failure& e) {
    FUZZ_CHECK(e.code() == StatusCode::invalid_argument || e.code() == StatusCode::internal);
    FUZZ_CHECK(e.what()[0] != '\0');
  } catch (const SetupError&) {
  }
  return 0;
}
