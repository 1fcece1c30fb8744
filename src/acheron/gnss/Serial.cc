#include "acheron/gnss/Serial.hh"

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "acheron/core/Error.hh"

namespace acheron::gnss {

unsigned baud_constant(int baud) {
  switch (baud) {
    case 9600:
      return B9600;
    case 19200:
      return B19200;
    case 38400:
      return B38400;
    case 57600:
      return B57600;
    case 115200:
      return B115200;
    case 230400:
      return B230400;
    case 460800:
      return B460800;
    case 921600:
      return B921600;
    default:
      throw SetupError("baud " + std::to_string(baud) +
                       " is not supported (u-blox UARTs run at 9600 to 921600) use one of 9600, "
                       "19200, 38400, 57600, 115200, 230400, 460800, 921600");
  }
}

SerialPort::SerialPort(const std::string& path, int baud) : path_(path) {
  const speed_t speed = baud_constant(baud);
  fd_ = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) {
    throw Failure(StatusCode::unavailable,
                  "cannot open " + path + " (" + std::strerror(errno) + ")");
  }
  termios tio{};
  if (::tcgetattr(fd_, &tio) != 0) {
    const std::string why = std::strerror(errno);
    close();
    throw Failure(StatusCode::unavailable, path + " is not a terminal device (" + why + ")");
  }
  ::cfmakeraw(&tio);
  tio.c_cflag |= CLOCAL | CREAD;
  tio.c_cflag &= ~(CSTOPB | CRTSCTS | PARENB);
  tio.c_iflag &= ~(IXON | IXOFF | IXANY);
  tio.c_cc[VMIN] = 0;
  tio.c_cc[VTIME] = 0;
  ::cfsetispeed(&tio, speed);
  ::cfsetospeed(&tio, speed);
  if (::tcsetattr(fd_, TCSANOW, &tio) != 0) {
    const std::string why = std::strerror(errno);
    close();
    throw Failure(StatusCode::unavailable, "cannot configure " + path + " (" + why + ")");
  }
  ::tcflush(fd_, TCIOFLUSH);
}

SerialPort::~SerialPort() {
  close();
}

SerialPort::SerialPort(SerialPort&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      error_(std::move(other.error_)) {}

SerialPort& SerialPort::operator=(SerialPort&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    error_ = std::move(other.error_);
  }
  return *this;
}

void SerialPort::close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

ReadStatus SerialPort::read(std::span<std::uint8_t> buf, Duration timeout, std::size_t* n) {
  *n = 0;
  if (fd_ < 0) {
    error_ = "port is closed";
    return ReadStatus::closed;
  }
  pollfd p{fd_, POLLIN, 0};
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
  const int r = ::poll(&p, 1, static_cast<int>(std::max<long long>(0, ms)));
  if (r < 0) {
    if (errno == EINTR) return ReadStatus::timeout;
    error_ = std::strerror(errno);
    return ReadStatus::closed;
  }
  if (r == 0) return ReadStatus::timeout;
  if (p.revents & POLLIN) {
    const ssize_t got = ::read(fd_, buf.data(), buf.size());
    if (got > 0) {
      *n = static_cast<std::size_t>(got);
      return ReadStatus::data;
    }
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) return ReadStatus::timeout;
    error_ = got == 0 ? "end of file" : std::strerror(errno);
    return ReadStatus::closed;
  }
  // POLLHUP / POLLERR / POLLNVAL without data: the device is gone.
  error_ = (p.revents & POLLHUP) ? "device hung up" : "device error";
  return ReadStatus::closed;
}

bool SerialPort::write(std::span<const std::uint8_t> bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    if (fd_ < 0) {
      error_ = "port is closed";
      return false;
    }
    const ssize_t w = ::write(fd_, bytes.data() + off, bytes.size() - off);
    if (w > 0) {
      off += static_cast<std::size_t>(w);
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, 1000) <= 0 || (p.revents & (POLLHUP | POLLERR | POLLNVAL))) {
        error_ = "device does not accept data";
        return false;
      }
      continue;
    }
    error_ = std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace acheron::gnss
