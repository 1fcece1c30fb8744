// Errors, status codes and checks shared by every module.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace acheron {

// Outcome of a request, shared by every front so each can map it onto its
// protocol's error reply. The numbering follows gRPC's status codes so the
// gRPC fronts translate one to one.
enum class StatusCode : int {
  ok = 0,
  cancelled = 1,
  unknown = 2,
  invalid_argument = 3,
  deadline_exceeded = 4,
  not_found = 5,
  already_exists = 6,
  permission_denied = 7,
  resource_exhausted = 8,
  failed_precondition = 9,
  aborted = 10,
  out_of_range = 11,
  unimplemented = 12,
  internal = 13,
  unavailable = 14,
};

// Lower-case name of a status code ("deadline_exceeded").
std::string_view to_string(StatusCode code);
// Inverse of to_string; unknown names give StatusCode::unknown.
StatusCode status_code_from_string(std::string_view name);

// Client text made safe to quote in an error message or log: bytes outside
// printable ASCII become \xNN (a NUL would cut the message short), and text
// longer than max_bytes is cut with "...".
std::string escaped(std::string_view text, std::size_t max_bytes = 256);

// An error that carries a status code. Thrown by request handlers and client
// calls; fronts turn it into their protocol's error reply.
class Failure : public std::runtime_error {
 public:
  Failure(StatusCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  StatusCode code() const noexcept { return code_; }

 private:
  StatusCode code_;
};

// A configuration or set-up error. Messages read "what is wrong (why) what to do".
class SetupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
[[noreturn]] void throw_setup_error(const char* condition, const std::string& message);
[[noreturn]] void assertion_failed(const char* condition, const char* file, int line);
}  // namespace detail

}  // namespace acheron

// Checks a set-up condition in every build; throws acheron::SetupError.
#define ACHERON_EXPECT(cond, message)                                    \
  do {                                                                   \
    if (!(cond)) ::acheron::detail::throw_setup_error(#cond, (message)); \
  } while (0)

// Checks an internal invariant in debug builds only; aborts with a message.
#ifdef NDEBUG
#define ACHERON_ASSERT(cond) ((void)0)
#else
#define ACHERON_ASSERT(cond) \
  ((cond) ? (void)0 : ::acheron::detail::assertion_failed(#cond, __FILE__, __LINE__))
#endif
