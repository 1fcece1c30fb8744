// The ready line every serving command prints once on stdout when all its
// sockets are bound (docs/cli.md, "Ready line"):
//   acheron VERSION SERVICE ready: NAME ENDPOINT[, NAME ENDPOINT]...
// or, with the json log format, one JSON object
//   {"ready": true, "service": ..., "version": ..., "endpoints": {NAME: ENDPOINT, ...}}
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acheron/core/LogFormat.hh"

namespace acheron {

// One endpoint of a ready line: what it is (charon, chroma, worker, http, ...)
// and where (an address a client can use, e.g. tcp://127.0.0.1:5555).
struct ReadyEndpoint {
  std::string name;
  std::string endpoint;
};

// The ready line, without the newline. A name given more than once gets a
// suffix from its second use on (chroma, chroma-2, chroma-3) so every name is
// a unique key. Throws SetupError for an empty service or endpoint list, or a
// name or endpoint that is empty or holds a space or comma (the text line
// could not be read back).
std::string ready_line(std::string_view service, const std::vector<ReadyEndpoint>& endpoints,
                       log::Format format);

// A ready line read back (either format): the service, the version and the
// endpoints in order. std::nullopt when `line` is not a ready line.
struct ReadyInfo {
  std::string service;
  std::string version;
  std::vector<ReadyEndpoint> endpoints;
  // The endpoint called `name`, or "" when there is none.
  std::string operator[](std::string_view name) const;
};
std::optional<ReadyInfo> parse_ready_line(std::string_view line);

}  // namespace acheron
