// Fuzz target: a reply of the AutoML classifier (TF-Serving's predict JSON)
// as the loop DHS receives it over HTTP: parse_automl_reply with and
// without a request key, then what the loop operations do with a
// prediction: evaluate_loop and the LOOP_INFO text sent to DCSS.
//
// Input: a first byte (threshold and scan depth), the key up to the first
// newline, then the reply body.
//
// Invariants: nothing crashes and no exception escapes (a bad reply is an
// invalid_argument error); a prediction has one detection per score and
// box of the prediction it picked (the one with the key, else the first);
// LOOP_INFO is always 16 tokens and parses
// as xos text, and a loop result only reports a class it was given.
#include <algorithm>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "FuzzInput.hh"
#include "acheron/dcss/Automl.hh"
#include "acheron/wire/Xos.hh"

namespace {

using namespace acheron;

// The detections a reply holds for `key`, read here independently: the
// prediction with that key, else the first; one per score with a box.
std::optional<std::size_t> expected_detections(std::string_view body, std::string_view key) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("predictions")) return std::nullopt;
  const auto& preds = j["predictions"];
  if (!preds.is_array() || preds.empty()) return std::nullopt;
  const nlohmann::json* chosen = &preds[0];
  for (const auto& p : preds) {
    if (p.is_object() && p.contains("key") && p["key"].is_string() &&
        p["key"].get<std::string>() == key) {
      chosen = &p;
      break;
    }
  }
  if (!chosen->is_object() || !chosen->contains("detection_scores") ||
      !chosen->contains("detection_boxes"))
    return std::nullopt;
  const auto& scores = (*chosen)["detection_scores"];
  const auto& boxes = (*chosen)["detection_boxes"];
  if (!scores.is_array() || !boxes.is_array()) return std::nullopt;
  return std::min(scores.size(), boxes.size());
}

void check_prediction(const dcss::Prediction& p, std::string_view key, double threshold, int scan) {
  FUZZ_CHECK(p.key == key);
  const auto r = dcss::evaluate_loop(p, threshold, scan);
  FUZZ_CHECK(r.loop_class == "none" || r.loop_class == "nylon" || r.loop_class == "mitegen");
  FUZZ_CHECK(r.is_micro_mount == (r.loop_class == "mitegen" ? 1 : 0));
  FUZZ_CHECK(!r.ok || !p.detections.empty());
  for (int index : {0, -1, 2147483647}) {
    const std::string text = dcss::loop_info_text(index, r);
    const auto tokens = wire::xos::tokenize(text);
    FUZZ_CHECK(tokens.size() == 16);
    FUZZ_CHECK(tokens[0] == "LOOP_INFO");
    FUZZ_CHECK(tokens[2] == (r.ok ? "normal" : "failed"));
    FUZZ_CHECK(wire::xos::encode_v2(text).size() > text.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  const std::uint8_t mode = in.u8();
  const double threshold = (mode & 0x0F) / 10.0;
  const int scan = (mode >> 4) - 2;  // -2..13: below 1 means 1
  const std::string key(in.until('\n'));
  const std::string_view body = in.rest();
  for (std::string_view k : {std::string_view(key), std::string_view()}) {
    auto p = dcss::parse_automl_reply(body, k);
    if (!p) {
      FUZZ_CHECK(p.error().code == StatusCode::invalid_argument);
      FUZZ_CHECK(!p.error().message.empty());
      continue;
    }
    if (const auto n = expected_detections(body, k)) FUZZ_CHECK(p->detections.size() == *n);
    check_prediction(*p, k, threshold, scan);
  }
  return 0;
}
