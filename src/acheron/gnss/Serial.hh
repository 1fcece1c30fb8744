// A serial device (USB CDC-ACM, UART or pseudo-terminal) in raw mode through
// termios. Reads wait with poll() so a reader can stop promptly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "acheron/core/Clock.hh"

namespace acheron::gnss {

// termios speed constant for a baud rate; throws SetupError for a rate the
// platform cannot set.
unsigned baud_constant(int baud);

enum class ReadStatus { data, timeout, closed };

class SerialPort final {
 public:
  SerialPort() = default;
  // Opens path read/write, raw 8N1, no flow control, at baud; discards bytes
  // already waiting. Throws Failure(unavailable) if it cannot be opened or
  // configured.
  SerialPort(const std::string& path, int baud);
  ~SerialPort();
  SerialPort(SerialPort&& other) noexcept;
  SerialPort& operator=(SerialPort&& other) noexcept;
  SerialPort(const SerialPort&) = delete;
  SerialPort& operator=(const SerialPort&) = delete;

  bool is_open() const noexcept { return fd_ >= 0; }
  const std::string& path() const noexcept { return path_; }

  // Reads what is available (up to buf.size()), waiting up to timeout.
  // closed: the device went away (hang-up, I/O error); error() says why.
  ReadStatus read(std::span<std::uint8_t> buf, Duration timeout, std::size_t* n);
  // Writes everything; false (with error()) if the device went away.
  bool write(std::span<const std::uint8_t> bytes);
  const std::string& error() const noexcept { return error_; }
  void close();

 private:
  int fd_ = -1;
  std::string path_;
  std::string error_;
};

}  // namespace acheron::gnss
