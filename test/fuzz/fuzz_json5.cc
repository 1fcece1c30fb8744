// Fuzz target: an f9t_config.json5 file as `acheron gnss init --config`
// reads it: the JSON5 normaliser and JSON parser, then the chip selection
// (by index and by f9t_uid) and the validation the server applies to the
// request.
//
// Invariants: nothing crashes; errors are SetupError (file and chip
// selection) or Failure (validation), never another exception; text that is
// already JSON means the same through the JSON5 path (JSON is JSON5); a
// parsed document printed as JSON and read again is unchanged.
#include <nlohmann/json.hpp>

#include "FuzzInput.hh"
#include "acheron/core/Error.hh"
#include "acheron/gnss/Config.hh"
#include "acheron/gnss/Json5.hh"

namespace {

using namespace acheron;

void select_and_validate(const nlohmann::json& file, int index, const std::string& uid) {
  try {
    const auto request = gnss::chip_request_config(file, index, uid);
    FUZZ_CHECK(request.is_object());
    FUZZ_CHECK(!request.contains("f9t_chips"));
    (void)gnss::parse_f9t_config(request);
  } catch (const SetupError&) {
  } catch (const Failure&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool has_nul = text.find('\0') != std::string_view::npos;
  nlohmann::json parsed;
  try {
    parsed = gnss::parse_json5(text);
  } catch (const SetupError&) {
    // Not JSON5; then it is not JSON either. (nlohmann's reader stops at a
    // NUL byte as at the end of the text, so it is no reference then.)
    FUZZ_CHECK(!nlohmann::json::accept(text) || has_nul);
    return 0;
  }
  // JSON is JSON5: the same document either way.
  const auto strict = nlohmann::json::parse(text, nullptr, false);
  if (!strict.is_discarded() && !has_nul) FUZZ_CHECK(strict == parsed);
  // Printed as JSON, read back through JSON5: unchanged.
  const std::string printed = parsed.dump();
  FUZZ_CHECK(gnss::parse_json5(printed) == parsed);
  FUZZ_CHECK(gnss::json5_to_json(printed) == printed);

  select_and_validate(parsed, 0, "");
  select_and_validate(parsed, 1, "");
  select_and_validate(parsed, -1, "");
  select_and_validate(parsed, 0, "DF03A241BC");
  return 0;
}
